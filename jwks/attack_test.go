package jwks_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

// recordingKeys is a fixed key set that records the kids it is asked for.
type recordingKeys struct {
	set  *jwks.Set
	mu   sync.Mutex
	kids []string
}

func (r *recordingKeys) LookupKeys(ctx context.Context, kid string) ([]jwks.Key, error) {
	r.mu.Lock()
	r.kids = append(r.kids, kid)
	r.mu.Unlock()
	return r.set.LookupKeys(ctx, kid)
}

// TestAttackKidIsOnlyAMapKey (RFC 8725 §3.10, jwt_tool kid injection):
// whatever a kid holds, it is looked up verbatim among the issuer's keys,
// never used as a path, query or command, and a token naming none of them
// is refused as signed by an unknown key.
func TestAttackKidIsOnlyAMapKey(t *testing.T) {
	issuerKey := jwkstest.NewKey("RS256")
	set, err := jwks.NewSet(jwks.Key{ID: issuerKey.ID, Algorithm: jwks.RS256, Public: issuerKey.Public()})
	require.NoError(t, err)
	keys := &recordingKeys{set: set}
	v, err := jwks.NewValidator(jwks.ValidatorConfig{Issuer: "https://athena.test", Audience: "https://api.test", Keys: keys, Now: fixedClock})
	require.NoError(t, err)
	attacker := jwkstest.NewKey("RS256")
	claims := `{"iss":"https://athena.test","aud":"https://api.test","sub":"w","client_id":"w","exp":` + strconv.FormatInt(t0.Unix()+3600, 10) + `}`

	for _, tc := range []struct{ source, kid, raw string }{
		{"PentesterLab JWT III; jwt_tool", "../../../../../../dev/null", `"../../../../../../dev/null"`},
		{"RFC 8725 §3.10 (SQL injection)", "' OR 1=1--", `"' OR 1=1--"`},
		{"RFC 8725 §3.10 (command injection)", "|whoami", `"|whoami"`},
		{"RFC 8725 §3.10", "key\x00.pem", `"key\u0000.pem"`},
		{"RFC 8725 §3.10 (an escaped kid is decoded as JSON, nothing more)", issuerKey.ID + "/../x", `"` + issuerKey.ID + `\/..\/x"`},
		{"RFC 8725 §3.10 (SSRF)", "https://attacker.test/keys.json", `"https://attacker.test/keys.json"`},
	} {
		t.Run(tc.source+" "+tc.raw, func(t *testing.T) {
			keys.mu.Lock()
			keys.kids = nil
			keys.mu.Unlock()
			token := jwkstest.SignRaw(attacker, []byte(`{"alg":"RS256","kid":`+tc.raw+`}`), []byte(claims))
			_, err := v.Validate(context.Background(), token)
			require.ErrorIs(t, err, jwks.ErrUnknownKey)
			keys.mu.Lock()
			defer keys.mu.Unlock()
			assert.Equal(t, []string{tc.kid}, keys.kids, "the kid is looked up once, verbatim")
		})
	}
}

// TestAttackJWEShapeRefusedBeforeDecoding (CVE-2023-49290, CVE-2024-28180):
// a compact JWE, PBES2 with p2c 2^31-1 and zip, is refused by counting its
// dots, before any base64 decoding.
func TestAttackJWEShapeRefusedBeforeDecoding(t *testing.T) {
	jwe := b64(`{"alg":"PBES2-HS256+A128KW","enc":"A128GCM","zip":"DEF","p2c":2147483647,"p2s":"c2FsdHNhbHRzYWx0c2FsdA"}`) + "." +
		b64("encrypted key") + "." + b64("iv-0123456789") + "." + strings.Repeat("A", 6000) + "." + b64("tag-0123456789ab")
	_, err := jwks.ParseToken(jwe, 0)
	require.ErrorIs(t, err, jwks.ErrNotJWT)
	allocs := testing.AllocsPerRun(100, func() { _, _ = jwks.ParseToken(jwe, 0) })
	assert.LessOrEqual(t, allocs, 1.0, "one allocation: the refusal itself")
}
