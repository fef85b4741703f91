package wycheproof_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
)

// jwsGroup is a group of json_web_signature_schema_v1 or
// json_web_key_schema_v1: a key (or key set) and tokens.
type jwsGroup struct {
	Comment string          `json:"comment"`
	Private json.RawMessage `json:"private"`
	Public  json.RawMessage `json:"public"`
	Tests   []jwsVector     `json:"tests"`
}

type jwsVector struct {
	vector
	// JWS is a compact serialization (a JSON string) or a JSON
	// serialization (an object).
	JWS json.RawMessage `json:"jws"`
}

var jwsFiles = []struct {
	name string
	min  int
}{
	{name: "json_web_signature_test.json", min: 401},
	{name: "json_web_key_test.json", min: 26},
}

// jwsStricter are the valid vectors whose signature Aegis refuses on
// purpose, by file and tcId, and why. HMAC vectors are not listed: every
// one is refused because Aegis allows no symmetric algorithm.
var jwsStricter = map[string]map[int]string{
	"json_web_signature_test.json": {
		346: "token alg PS384, key's JWK alg PS256: Aegis uses a key only for its own alg (RFC 8725 §3.1)",
		347: `key's JWK alg "ES521" is not a JWS algorithm: jwks.ParseSet leaves the key out`,
		350: "token alg PS384, key's JWK alg PS256: Aegis uses a key only for its own alg (RFC 8725 §3.1)",
		351: `key's JWK alg "ES521" is not a JWS algorithm: jwks.ParseSet leaves the key out`,
		372: "a character outside base64url in the header: Aegis decodes base64url strictly (and this is HS256 besides)",
		373: "a character outside base64url in the payload: Aegis decodes base64url strictly (and this is HS256 besides)",
	},
}

// jwsAcceptedInvalid are the invalid vectors whose signature step passes
// in Aegis, by file and tcId, and why that is so. The full Validator still
// refuses them (their payloads are no access tokens), but only by chance:
// each one is a gap.
var jwsAcceptedInvalid = map[string]map[int]string{}

const wycheproofIssuer = "https://wycheproof.example"

// TestJWSVectors runs the JWS and JWK vectors through jwks.ParseSet (the
// group's public key or key set; its private key when it has none, as for
// HMAC) and a full jwks.Validator. Their payloads ("foo", RFC 7520's
// text...) are not access tokens, so Validate refuses every one of them,
// valid ones too, for the claims; the test therefore also runs each token's
// signature step (signatureStep: the header's alg and kid, the keys
// ParseSet kept, jwks.SignatureVerifier) and holds valid vectors to it.
// Invalid vectors must be refused by both.
func TestJWSVectors(t *testing.T) {
	for _, f := range jwsFiles {
		t.Run(strings.TrimSuffix(f.name, "_test.json"), func(t *testing.T) {
			file, groups := loadFile[jwsGroup](t, f.name)
			c := newTally()
			validateWhy := map[string]int{}
			for gi, g := range groups {
				t.Run(fmt.Sprintf("group%03d_%s", gi, g.Comment), func(t *testing.T) {
					runJWSGroup(t, f.name, gi, g, c, validateWhy)
				})
			}
			c.check(t, f.name+" (signature step)", file, f.min)
			var b strings.Builder
			for _, why := range slices.Sorted(maps.Keys(validateWhy)) {
				fmt.Fprintf(&b, "\n    %d: %s", validateWhy[why], why)
			}
			t.Logf("%s: jwks.Validator.Validate refusals by reason:%s", f.name, b.String())
		})
	}
}

func runJWSGroup(t *testing.T, name string, gi int, g jwsGroup, c *tally, validateWhy map[string]int) {
	require.NotEmpty(t, g.Tests, "%s group %d has no tests", name, gi)
	set := groupKeySet(t, g)
	v, err := jwks.NewValidator(jwks.ValidatorConfig{Issuer: wycheproofIssuer, AnyAudience: true, Keys: set})
	require.NoError(t, err)
	for _, tv := range g.Tests {
		token := tokenOf(t, tv)
		where := fmt.Sprintf("%s group %d (%s) %s", name, gi, g.Comment, tv)

		_, validateErr := v.Validate(t.Context(), token)
		require.Error(t, validateErr, "%s: jwks.Validator accepted a token of Wycheproof's", where)
		validateWhy[reasonOf(validateErr)]++

		alg, sigErr := signatureStep(set, token)
		accepted := sigErr == nil

		wantAccept, why := true, ""
		switch {
		case tv.Result == "invalid":
			wantAccept = false
			if gap := jwsAcceptedInvalid[name][tv.TcID]; gap != "" {
				wantAccept, why = true, gap
			}
		case jwsStricter[name][tv.TcID] != "":
			wantAccept, why = false, jwsStricter[name][tv.TcID]
		case strings.HasPrefix(alg, "HS"):
			wantAccept, why = false, "HMAC ("+alg+"): Aegis allows no symmetric algorithm"
		}
		if accepted != wantAccept {
			t.Errorf("%s: signature step %s, expected %s %s (signature step error: %v; Validate: %v)",
				where, verdict(accepted), verdict(wantAccept), why, sigErr, validateErr)
		}
		if tv.Result != "invalid" {
			// The full Validator refuses valid vectors for their payloads, never
			// for a signature that verifies.
			if accepted {
				require.NotErrorIs(t, validateErr, jwks.ErrSignature, where)
			}
		}
		c.count(tv.vector, accepted, why)
	}
}

func verdict(accepted bool) string {
	if accepted {
		return "accepted"
	}
	return "refused"
}

// groupKeySet reads the group's public key or key set (its private key when
// it has no public one) with jwks.ParseSet.
func groupKeySet(t *testing.T, g jwsGroup) *jwks.Set {
	t.Helper()
	raw := g.Public
	if len(raw) == 0 {
		raw = g.Private
	}
	require.NotEmpty(t, raw, "group without a key")
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(raw, &probe))
	doc := raw
	if probe.Keys == nil {
		doc = json.RawMessage(`{"keys":[` + string(raw) + `]}`)
	}
	set, _, err := jwks.ParseSet(doc)
	require.NoError(t, err)
	return set
}

// tokenOf returns the vector's token as a client would send it: the
// compact serialization, or the JSON serialization's text.
func tokenOf(t *testing.T, tv jwsVector) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(tv.JWS, &s); err == nil {
		return s
	}
	return string(tv.JWS)
}

var b64 = base64.RawURLEncoding.Strict()

// signatureStep is the signature half of jwks.Validator.Verify, on a token
// whose payload need not be claims: three canonical base64url parts, the
// header's alg (a jwks.SignatureVerifier exists only for allowed ones) and
// kid (the keys of set with that kid, every key for none), then the
// signature of the first two parts with each key that fits. It returns the
// header's alg and nil if a key verifies the signature.
func signatureStep(set *jwks.Set, token string) (alg string, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", jwks.ErrNotJWT
	}
	headerJSON, err := b64.DecodeString(parts[0])
	if err != nil {
		return "", jwks.ErrNotJWT
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(headerJSON, &h); err != nil {
		return "", jwks.ErrNotJWT
	}
	if _, err := b64.DecodeString(parts[1]); err != nil {
		return h.Alg, jwks.ErrMalformed
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) == 0 {
		return h.Alg, jwks.ErrMalformed
	}
	verifier, err := jwks.NewSignatureVerifier(h.Alg)
	if err != nil {
		return h.Alg, err
	}
	keys := set.Lookup(h.Kid)
	if len(keys) == 0 {
		return h.Alg, jwks.ErrUnknownKey
	}
	err = jwks.ErrAlgorithm
	for _, k := range keys {
		e := verifier.Verify(k, []byte(parts[0]+"."+parts[1]), sig)
		if e == nil {
			return h.Alg, nil
		}
		if errors.Is(e, jwks.ErrSignature) {
			err = e
		}
	}
	return h.Alg, err
}

// reasonOf names the Err value of package jwks a refusal matches.
func reasonOf(err error) string {
	for _, e := range []error{jwks.ErrNotJWT, jwks.ErrMalformed, jwks.ErrAlgorithm, jwks.ErrUnknownKey, jwks.ErrSignature,
		jwks.ErrType, jwks.ErrIssuer, jwks.ErrAudience, jwks.ErrExpired, jwks.ErrNotYetValid, jwks.ErrClaims, jwks.ErrKeysUnavailable} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "other: " + err.Error()
}
