package wycheproof_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
)

// sigGroup is a test group of the signature verification schemas
// (rsassa_pkcs1_verify, rsassa_pkcs1_generate, rsassa_pss_verify,
// ecdsa_p1363_verify, ecdsa_verify, eddsa_verify): one public key, the
// parameters, and messages with signatures.
type sigGroup struct {
	Type         string          `json:"type"`
	Sha          string          `json:"sha"`
	Mgf          string          `json:"mgf"`
	MgfSha       string          `json:"mgfSha"`
	SLen         *int            `json:"sLen"`
	KeySize      int             `json:"keySize"`
	PublicKey    rawPublicKey    `json:"publicKey"`
	PublicKeyJwk json.RawMessage `json:"publicKeyJwk"`
	KeyJwk       json.RawMessage `json:"keyJwk"`
	KeyAsn       hexBytes        `json:"keyAsn"` // PKCS#1 RSAPublicKey (rsassa_pkcs1_generate)
	Tests        []sigVector     `json:"tests"`
}

// rawPublicKey holds the members of every kind of publicKey object.
type rawPublicKey struct {
	Modulus        hexBytes `json:"modulus"`
	PublicExponent hexBytes `json:"publicExponent"`
	Curve          string   `json:"curve"`
	KeySize        int      `json:"keySize"`
	Uncompressed   hexBytes `json:"uncompressed"`
	Pk             hexBytes `json:"pk"`
}

type sigVector struct {
	vector
	Msg hexBytes `json:"msg"`
	Sig hexBytes `json:"sig"`
}

// family is the JWS algorithm family a file's signatures are checked as.
type family int

const (
	familyRS family = iota // RSASSA-PKCS1-v1_5: RS256/384/512 by the group's hash
	familyPS               // RSASSA-PSS: PS256/384/512 by the group's hash
	familyES               // ECDSA: ES256/384/512 by the key's curve
	familyEdDSA
)

type sigFile struct {
	name   string
	family family
	// der: the signatures are ASN.1 DER, not the raw r||s of JWS.
	der bool
	// min is the least number of vectors that must run: all the vectors of
	// the file, less those of groups no JWS alg fits.
	min int
}

var sigFiles = []sigFile{
	// RS*: PKCS#1 v1.5 verification vectors, every key size Aegis takes.
	{name: "rsa_signature_2048_sha256_test.json", family: familyRS, min: 259},
	{name: "rsa_signature_2048_sha384_test.json", family: familyRS, min: 258},
	{name: "rsa_signature_2048_sha512_test.json", family: familyRS, min: 259},
	{name: "rsa_signature_3072_sha256_test.json", family: familyRS, min: 259},
	{name: "rsa_signature_3072_sha384_test.json", family: familyRS, min: 259},
	{name: "rsa_signature_3072_sha512_test.json", family: familyRS, min: 260},
	{name: "rsa_signature_4096_sha256_test.json", family: familyRS, min: 258},
	{name: "rsa_signature_4096_sha384_test.json", family: familyRS, min: 259},
	{name: "rsa_signature_4096_sha512_test.json", family: familyRS, min: 259},
	{name: "rsa_signature_8192_sha256_test.json", family: familyRS, min: 258},
	{name: "rsa_signature_8192_sha384_test.json", family: familyRS, min: 259},
	{name: "rsa_signature_8192_sha512_test.json", family: familyRS, min: 259},
	// RS*: signatures made by the generation vectors, small keys included.
	{name: "rsa_pkcs1_1024_sig_gen_test.json", family: familyRS, min: 17},
	{name: "rsa_pkcs1_1536_sig_gen_test.json", family: familyRS, min: 24},
	{name: "rsa_pkcs1_2048_sig_gen_test.json", family: familyRS, min: 27},
	{name: "rsa_pkcs1_3072_sig_gen_test.json", family: familyRS, min: 26},
	{name: "rsa_pkcs1_4096_sig_gen_test.json", family: familyRS, min: 24},
	// PS*: the JWS parameters (MGF1 with the same hash, salt as long as the hash).
	{name: "rsa_pss_2048_sha256_mgf1_32_test.json", family: familyPS, min: 108},
	{name: "rsa_pss_3072_sha256_mgf1_32_test.json", family: familyPS, min: 108},
	{name: "rsa_pss_4096_sha256_mgf1_32_test.json", family: familyPS, min: 108},
	{name: "rsa_pss_2048_sha384_mgf1_48_test.json", family: familyPS, min: 141},
	{name: "rsa_pss_4096_sha384_mgf1_48_test.json", family: familyPS, min: 141},
	{name: "rsa_pss_4096_sha512_mgf1_64_test.json", family: familyPS, min: 179},
	// PS*: other parameters with a JWS hash, checked as that PS alg.
	{name: "rsa_pss_2048_sha256_mgf1_0_test.json", family: familyPS, min: 103},
	{name: "rsa_pss_4096_sha512_mgf1_32_test.json", family: familyPS, min: 177},
	{name: "rsa_pss_2048_sha256_mgf1sha1_20_test.json", family: familyPS, min: 108},
	{name: "rsa_pss_misc_test.json", family: familyPS, min: 90},
	// ES*: IEEE P1363 (r||s) signatures, the JWS encoding.
	{name: "ecdsa_secp256r1_sha256_p1363_test.json", family: familyES, min: 262},
	{name: "ecdsa_secp384r1_sha384_p1363_test.json", family: familyES, min: 280},
	{name: "ecdsa_secp521r1_sha512_p1363_test.json", family: familyES, min: 318},
	// ES*: a hash other than the JWS one for the curve.
	{name: "ecdsa_secp256r1_sha512_p1363_test.json", family: familyES, min: 332},
	{name: "ecdsa_secp384r1_sha512_p1363_test.json", family: familyES, min: 318},
	// ES*: the same kind of vectors in DER, which JWS does not use.
	{name: "ecdsa_secp256r1_sha256_test.json", family: familyES, der: true, min: 484},
	{name: "ecdsa_secp384r1_sha384_test.json", family: familyES, der: true, min: 504},
	{name: "ecdsa_secp521r1_sha512_test.json", family: familyES, der: true, min: 542},
	// EdDSA.
	{name: "ed25519_test.json", family: familyEdDSA, min: 151},
	{name: "ed448_test.json", family: familyEdDSA, min: 87},
}

// strictFlags are the flags of "acceptable" vectors that Aegis refuses on
// purpose, and why.
var strictFlags = map[string]string{
	"MissingNull": "acceptable with flag MissingNull: a PKCS#1 v1.5 DigestInfo without the NULL parameter is a legacy encoding; Go's crypto/rsa (under jwx) accepts only the canonical one",
}

// jwsValid are vectors invalid under their group's own parameters that are
// valid JWS signatures of the alg they are checked as, so Aegis must accept
// them.
var jwsValid = map[string]map[int]string{
	"rsa_pss_2048_sha256_mgf1_0_test.json": {
		69: "invalid for the group's 0-byte salt, but its salt is 32 bytes: exactly a PS256 signature",
	},
}

// Aegis refuses these keys on purpose (jwks.ParseSet, jwks.NewSet): the
// test fails if it refuses any other, or accepts one of these.
func deliberateKeyRefusal(g sigGroup) string {
	switch {
	case len(g.PublicKey.Modulus) > 0 || len(g.KeyAsn) > 0 || g.Type == "RsassaPkcs1Generate":
		if g.KeySize < 2048 {
			return fmt.Sprintf("RSA key of %d bits: Aegis refuses RSA keys under 2048 bits (SmallModulus)", g.KeySize)
		}
	case g.PublicKey.Curve == "edwards448":
		return "Ed448 key: Aegis verifies EdDSA with Ed25519 keys only (Go has no Ed448)"
	}
	return ""
}

var shaBits = map[string]string{"SHA-256": "256", "SHA-384": "384", "SHA-512": "512"}

var curveAlg = map[string]string{"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}

// groupPlan says how a group is run.
type groupPlan struct {
	alg string // the JWS alg the signatures are verified as
	// skip, when set, is why the group is not run (no JWS alg fits it).
	skip string
	// offSpec, when set, says why the group's signatures are not JWS
	// signatures of alg although some are valid under the group's own
	// parameters: they must all be refused.
	offSpec string
}

func planGroup(f sigFile, g sigGroup) groupPlan {
	switch f.family {
	case familyRS:
		bits, ok := shaBits[g.Sha]
		if !ok {
			return groupPlan{skip: "hash " + g.Sha + ": no JWS RSASSA-PKCS1-v1_5 algorithm uses it"}
		}
		return groupPlan{alg: "RS" + bits}
	case familyPS:
		bits, ok := shaBits[g.Sha]
		if !ok {
			return groupPlan{skip: "hash " + g.Sha + ": no JWS RSASSA-PSS algorithm uses it"}
		}
		p := groupPlan{alg: "PS" + bits}
		hashLen := map[string]int{"256": 32, "384": 48, "512": 64}[bits]
		switch {
		case g.Mgf != "MGF1" || g.MgfSha != g.Sha:
			p.offSpec = "PSS whose MGF1 hash is not the message hash: JWS PS* uses MGF1 with the same hash (RFC 7518 §3.5)"
		case g.SLen == nil || *g.SLen != hashLen:
			p.offSpec = "PSS salt not as long as the hash: JWS PS* fixes it to the hash length (RFC 7518 §3.5)"
		}
		return p
	case familyES:
		p := groupPlan{alg: curveAlg[g.PublicKey.Curve]}
		if p.alg == "" {
			return groupPlan{skip: "curve " + g.PublicKey.Curve + ": no JWS ECDSA algorithm uses it"}
		}
		want := map[string]string{"ES256": "SHA-256", "ES384": "SHA-384", "ES512": "SHA-512"}[p.alg]
		switch {
		case f.der:
			p.offSpec = "ECDSA signature in ASN.1 DER: JWS " + p.alg + " takes the fixed-size r||s (RFC 7518 §3.4)"
		case g.Sha != want:
			p.offSpec = fmt.Sprintf("ECDSA with %s: JWS %s uses %s", g.Sha, p.alg, want)
		}
		return p
	default:
		return groupPlan{alg: jwks.EdDSA}
	}
}

// groupKey builds the group's key the way Aegis would get it: from its JWK
// through jwks.ParseSet when the group has one, else from the raw public
// key through jwks.NewSet. refused is the reason Aegis refused the key.
func groupKey(t *testing.T, g sigGroup) (key jwks.Key, refused, source string) {
	t.Helper()
	jwk := g.PublicKeyJwk
	if len(jwk) == 0 {
		jwk = g.KeyJwk
	}
	if len(jwk) > 0 {
		set, rejected, err := jwks.ParseSet([]byte(`{"keys":[` + string(jwk) + `]}`))
		require.NoError(t, err)
		if set.Len() == 0 {
			require.Len(t, rejected, 1)
			return jwks.Key{}, "key refused by jwks.ParseSet: " + rejected[0].Reason, "jwk"
		}
		return set.Keys()[0], "", "jwk"
	}
	pub, err := rawKey(g)
	if err != nil {
		return jwks.Key{}, "key unreadable: " + err.Error(), "raw"
	}
	set, err := jwks.NewSet(jwks.Key{Public: pub})
	if err != nil {
		return jwks.Key{}, "key refused by jwks.NewSet: " + err.Error(), "raw"
	}
	return set.Keys()[0], "", "raw"
}

func rawKey(g sigGroup) (crypto.PublicKey, error) {
	pk := g.PublicKey
	switch {
	case len(pk.Modulus) > 0:
		e := new(big.Int).SetBytes(pk.PublicExponent)
		if !e.IsInt64() || e.Int64() > 1<<31-1 {
			return nil, errors.New("RSA exponent too large")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(pk.Modulus), E: int(e.Int64())}, nil
	case len(g.KeyAsn) > 0:
		return x509.ParsePKCS1PublicKey(g.KeyAsn)
	case len(pk.Uncompressed) > 0:
		curves := map[string]elliptic.Curve{"secp256r1": elliptic.P256(), "secp384r1": elliptic.P384(), "secp521r1": elliptic.P521()}
		c, ok := curves[pk.Curve]
		if !ok {
			return nil, fmt.Errorf("curve %s", pk.Curve)
		}
		return ecdsa.ParseUncompressedPublicKey(c, pk.Uncompressed)
	case pk.Curve == "edwards25519":
		if len(pk.Pk) != ed25519.PublicKeySize {
			return nil, errors.New("Ed25519 key of the wrong size")
		}
		return ed25519.PublicKey(pk.Pk), nil
	}
	return nil, fmt.Errorf("no usable public key in a %s group", g.Type)
}

// TestSignatureVectors runs the raw signature vectors through
// jwks.SignatureVerifier, the primitive jwks.Validator verifies every token
// signature with, with keys obtained through jwks.ParseSet or jwks.NewSet.
//
// Files whose parameters are not the JWS ones for their key are run too,
// checked as the JWS alg of their hash (RSA) or curve (ECDSA): their valid
// signatures must all be refused: DER-encoded ECDSA, another ECDSA hash,
// another MGF1 hash, and a PSS salt of another length than the hash (RFC
// 7518 §3.5; jwx alone would accept any salt length, which is why
// SignatureVerifier checks PS* itself).
//
// Not run: SHA-1, SHA-224, SHA-512/t, SHA-3 and SHAKE files and groups (no
// JWS algorithm uses them), the *_params_test.json duplicates (same vectors,
// only the key's ASN.1 parameters differ, and Aegis reads JWKs), curves other
// than P-256/384/521.
func TestSignatureVectors(t *testing.T) {
	for _, f := range sigFiles {
		t.Run(strings.TrimSuffix(f.name, "_test.json"), func(t *testing.T) {
			file, groups := loadFile[sigGroup](t, f.name)
			c := newTally()
			keySources := map[string]int{}
			for gi, g := range groups {
				plan := planGroup(f, g)
				if plan.skip != "" {
					c.skip(len(g.Tests), plan.skip)
					continue
				}
				t.Run(fmt.Sprintf("group%03d", gi), func(t *testing.T) {
					runSignatureGroup(t, f, gi, g, plan, c, keySources)
				})
			}
			c.check(t, f.name, file, f.min)
			t.Logf("%s: keys of %d groups read from their JWK (jwks.ParseSet), %d from raw parameters (jwks.NewSet)", f.name, keySources["jwk"], keySources["raw"])
		})
	}
}

func runSignatureGroup(t *testing.T, f sigFile, gi int, g sigGroup, plan groupPlan, c *tally, keySources map[string]int) {
	require.NotEmpty(t, g.Tests, "%s group %d has no tests", f.name, gi)
	key, keyRefused, source := groupKey(t, g)
	keySources[source]++
	deliberate := deliberateKeyRefusal(g)
	switch {
	case keyRefused != "" && deliberate == "":
		require.Failf(t, "key refused", "%s group %d (%s): Aegis refused a key it should take: %s", f.name, gi, plan.alg, keyRefused)
	case keyRefused == "" && deliberate != "":
		require.Failf(t, "key accepted", "%s group %d: Aegis accepted a key it should refuse: %s", f.name, gi, deliberate)
	case keyRefused != "":
		keyRefused = deliberate + " [" + keyRefused + "]"
	}
	verifier, err := jwks.NewSignatureVerifier(plan.alg)
	require.NoError(t, err)
	for _, v := range g.Tests {
		wantAccept, why := true, ""
		switch {
		case jwsValid[f.name][v.TcID] != "":
			wantAccept, why = true, jwsValid[f.name][v.TcID]
		case v.Result == "invalid":
			wantAccept = false
		case keyRefused != "":
			wantAccept, why = false, keyRefused
		case plan.offSpec != "":
			wantAccept, why = false, plan.offSpec
		case v.Result == "acceptable":
			for _, flag := range v.Flags {
				if reason, ok := strictFlags[flag]; ok {
					wantAccept, why = false, reason
				}
			}
		}
		accepted := false
		if keyRefused == "" {
			err := verifier.Verify(key, v.Msg, v.Sig)
			accepted = err == nil
			if err != nil {
				// The key fits its algorithm here, so every refusal is the
				// signature's.
				require.ErrorIs(t, err, jwks.ErrSignature, "%s group %d %s as %s", f.name, gi, v, plan.alg)
			}
		}
		if accepted != wantAccept {
			verdict := map[bool]string{true: "accepted", false: "refused"}
			t.Errorf("%s group %d %s: Aegis %s it as %s, expected %s %s", f.name, gi, v, verdict[accepted], plan.alg, verdict[wantAccept], why)
		}
		c.count(v.vector, accepted, why)
	}
}
