package jwks_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

func jwkWith(t *testing.T, k *jwkstest.Key, set map[string]any) json.RawMessage {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(k.JWK(), &m))
	for name, v := range set {
		if v == nil {
			delete(m, name)
			continue
		}
		m[name] = v
	}
	return mustJSON(t, m)
}

func rsaJWK(t *testing.T, bits int, kid string) json.RawMessage {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	require.NoError(t, err)
	return mustJSON(t, map[string]any{
		"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(priv.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(priv.E)).Bytes()),
	})
}

// rocaPEM is a public key made by Infineon's RSALib, factorable by ROCA
// (CVE-2017-15361): the first of rocacheck's published test keys.
const rocaPEM = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlze9c7qGdjDLVR/ntk+4
ZkfMcYsAnmfTFHfe3Xv7jRQqPCXCULtr0y0jG3aRJmEenoXO9uDveqr43gFB9yvA
dLEhu0aJqpB7lNZ+yXsvfVp/96dkSN8oWYL/dd9Z7GQOvVniHUY3Xsd7zdw2eYOy
HSXhhA2Ttwnj3c1jEYfC0y9q1cU99aL0ogGDqolcOvlkJu+mGb+6+WyboFa1gwRu
kYxBHZWKiHCt/eihvXsPTzTlXmTXWdGJtA1xZDnCBWuZ90b5R0agXVIESTl0cCyH
aQM/tLZmktJIU+Eu7ALBXemPg9kh3SCnYd3/YvDGCtYSXOWthHwlP5CImRBcQaNn
cQIDAQAB
-----END PUBLIC KEY-----`

func rocaJWK(t *testing.T) json.RawMessage {
	t.Helper()
	block, _ := pem.Decode([]byte(rocaPEM))
	require.NotNil(t, block)
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	require.NoError(t, err)
	rsaPub := pub.(*rsa.PublicKey)
	return mustJSON(t, map[string]any{
		"kty": "RSA", "kid": "roca", "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(rsaPub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(rsaPub.E)).Bytes()),
	})
}

// TestParseSetDropsUnfitKeysOneByOne puts one good key beside each kind of
// unfit key: the unfit one is reported and the good one survives.
func TestParseSetDropsUnfitKeysOneByOne(t *testing.T) {
	good := jwkstest.NewKey("RS256")
	ec := jwkstest.NewKey("ES256")
	ecPub := ec.Public().(*ecdsa.PublicKey)
	offCurve := jwkWith(t, ec, map[string]any{"kid": "off-curve",
		"y": base64.RawURLEncoding.EncodeToString(new(big.Int).Add(ecPub.Y, big.NewInt(1)).FillBytes(make([]byte, 32)))})
	tests := []struct {
		name   string
		unfit  json.RawMessage
		reason string
	}{
		{name: "symmetric oct key", unfit: json.RawMessage(`{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}`), reason: "symmetric"},
		{name: "RSA 1024", unfit: rsaJWK(t, 1024, "weak"), reason: "under 2048"},
		{name: "RSA 2048 with the ROCA weakness", unfit: rocaJWK(t), reason: "ROCA"},
		{name: "use enc", unfit: jwkWith(t, jwkstest.NewKey("RS256"), map[string]any{"kid": "enc", "use": "enc"}), reason: "use"},
		{name: "key_ops without verify", unfit: jwkWith(t, jwkstest.NewKey("RS256"), map[string]any{"kid": "ops", "use": nil, "key_ops": []string{"encrypt"}}), reason: "key_ops"},
		{name: "unknown kty", unfit: json.RawMessage(`{"kty":"PQC","kid":"future","x":"AA"}`), reason: "unsupported kty"},
		{name: "no kty", unfit: json.RawMessage(`{"kid":"none"}`), reason: "no kty"},
		{name: "EC point off the curve", unfit: offCurve, reason: "not on its curve"},
		{name: "private key material", unfit: jwkWith(t, jwkstest.NewKey("RS256"), map[string]any{"kid": "priv", "d": "AQAB"}), reason: "private"},
		{name: "HS256 alg on an RSA key", unfit: jwkWith(t, jwkstest.NewKey("RS256"), map[string]any{"kid": "hs", "alg": "HS256"}), reason: "not an allowed"},
		{name: "alg that does not fit the key", unfit: jwkWith(t, jwkstest.NewKey("RS256"), map[string]any{"kid": "mismatch", "alg": "ES256"}), reason: "does not fit"},
		{name: "ES256 alg on a P-384 key", unfit: jwkWith(t, jwkstest.NewKey("ES384"), map[string]any{"kid": "curve", "alg": "ES256"}), reason: "does not fit"},
		{name: "X25519 key", unfit: json.RawMessage(`{"kty":"OKP","crv":"X25519","kid":"x","x":"` + base64.RawURLEncoding.EncodeToString(make([]byte, 32)) + `"}`), reason: "unsupported"},
		{name: "secp256k1 key", unfit: json.RawMessage(`{"kty":"EC","crv":"secp256k1","kid":"k1","x":"AA","y":"AA"}`), reason: ""},
		{name: "member of the wrong type", unfit: json.RawMessage(`{"kty":"RSA","kid":7}`), reason: "wrong type"},
		{name: "duplicate member", unfit: json.RawMessage(`{"kty":"RSA","kty":"oct"}`), reason: "strict JSON"},
		{name: "not an object", unfit: json.RawMessage(`"key"`), reason: "strict JSON"},
		{name: "unreadable RSA parameters", unfit: json.RawMessage(`{"kty":"RSA","kid":"bad","n":"!!","e":"AQAB"}`), reason: "unreadable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := mustJSON(t, map[string]any{"keys": []json.RawMessage{tc.unfit, good.JWK()}})
			set, rejected, err := jwks.ParseSet(doc)
			require.NoError(t, err)
			require.Equal(t, 1, set.Len())
			assert.Equal(t, good.ID, set.Keys()[0].ID)
			require.Len(t, rejected, 1)
			assert.Contains(t, rejected[0].Reason, tc.reason)
		})
	}
}

func TestParseSetKeepsEveryFitKind(t *testing.T) {
	var raws []json.RawMessage
	var ids []string
	for _, alg := range []string{"RS256", "PS384", "ES256", "ES384", "ES512", "EdDSA"} {
		k := jwkstest.NewKey(alg)
		raws = append(raws, k.JWK())
		ids = append(ids, k.ID)
	}
	noAlg := jwkstest.NewKey("RS256")
	raws = append(raws, jwkWith(t, noAlg, map[string]any{"alg": nil, "use": nil}))
	ids = append(ids, noAlg.ID)
	set, rejected, err := jwks.ParseSet(mustJSON(t, map[string]any{"keys": raws}))
	require.NoError(t, err)
	assert.Empty(t, rejected)
	require.Equal(t, len(ids), set.Len())
	for i, k := range set.Keys() {
		assert.Equal(t, ids[i], k.ID)
		assert.Len(t, set.Lookup(k.ID), 1)
	}
	assert.Len(t, set.Lookup(""), len(ids))
	// A key without alg verifies every algorithm that fits its type.
	k := set.Lookup(noAlg.ID)[0]
	assert.True(t, k.Verifies("RS256"))
	assert.True(t, k.Verifies("PS512"))
	assert.False(t, k.Verifies("ES256"))
}

func TestParseSetDocumentErrors(t *testing.T) {
	for _, doc := range []string{``, `[]`, `{}`, `{"keys":{}}`, `{"keys":null}`, `{"keys":[],"keys":[]}`, `not json`} {
		_, _, err := jwks.ParseSet([]byte(doc))
		assert.Error(t, err, doc)
	}
}

func TestParseSetBoundsKeyCount(t *testing.T) {
	k := jwkstest.NewKey("ES256").JWK()
	raws := make([]json.RawMessage, 150)
	for i := range raws {
		raws[i] = k
	}
	set, rejected, err := jwks.ParseSet(mustJSON(t, map[string]any{"keys": raws}))
	require.NoError(t, err)
	assert.Equal(t, 100, set.Len())
	require.Len(t, rejected, 1)
	assert.Contains(t, rejected[0].Reason, "more than 100")
}

func TestNewSet(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	tests := []struct {
		name string
		key  jwks.Key
		ok   bool
	}{
		{name: "RSA-1024", key: jwks.Key{ID: "w", Public: &weak.PublicKey}},
		{name: "P-384 labelled ES256", key: jwks.Key{ID: "p", Algorithm: "ES256", Public: &p384.PublicKey}},
		{name: "P-384 as ES384", key: jwks.Key{ID: "p", Algorithm: "ES384", Public: &p384.PublicKey}, ok: true},
		{name: "Ed25519", key: jwks.Key{ID: "e", Public: edPub}, ok: true},
		{name: "short Ed25519", key: jwks.Key{ID: "e", Public: edPub[:16]}},
		{name: "unsupported type", key: jwks.Key{ID: "x", Public: "not a key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, err := jwks.NewSet(tc.key)
			if !tc.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, 1, set.Len())
		})
	}
}

// FuzzParseSet feeds arbitrary documents to the key set parser: it must
// never panic, and every key it keeps must be fit to verify with.
func FuzzParseSet(f *testing.F) {
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[` + string(jwkstest.NewKey("ES256").JWK()) + `,` + string(jwkstest.NewKey("EdDSA").JWK()) + `]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		set, rejected, err := jwks.ParseSet(doc)
		if err != nil {
			assert.Nil(t, set)
			return
		}
		for _, k := range set.Keys() {
			_, err := jwks.NewSet(k)
			assert.NoError(t, err, "kept a key NewSet refuses")
		}
		for _, r := range rejected {
			assert.NotEmpty(t, r.Reason)
		}
	})
}
