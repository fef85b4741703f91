package introspect_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks/jwkstest"
)

// hydraUserClaims are the claims Ory Hydra's introspection describes for
// person i's opaque token: UUID subject, client and jti, the usual OpenID
// scopes and the session's claims under ext.
func hydraUserClaims(iss *jwkstest.Issuer, i int) map[string]any {
	c := iss.Claims(fmt.Sprintf("3f2a9c1e-7b4d-4e8a-9c61-%012x", i), "5d6c1b0a-2f3e-4d5c-8b7a-69f0e1d2c3b4",
		"openid", "offline_access", "profile", "email", "data:read", "data:write")
	c["jti"] = fmt.Sprintf("a1b2c3d4-e5f6-4a7b-8c9d-%012x", i)
	c["ext"] = map[string]any{
		"email":  fmt.Sprintf("user.%07d@example.com", i),
		"name":   fmt.Sprintf("User %07d", i),
		"tenant": "olympus-prod",
		"roles":  []string{"reader", "writer"},
	}
	return c
}

// unknownOpaqueTokens returns n distinct Hydra-shaped opaque tokens no
// issuer minted.
func unknownOpaqueTokens(n int) []string {
	tokens := make([]string, n)
	buf := make([]byte, 48)
	for i := range tokens {
		_, _ = rand.Read(buf) // never fails (crypto/rand)
		tokens[i] = "ory_at_" + base64.RawURLEncoding.EncodeToString(buf[:24]) + "." + base64.RawURLEncoding.EncodeToString(buf[24:])
	}
	return tokens
}

// BenchmarkIntrospectCacheBytesPerEntry fills a Client's cache of the
// default size (introspect.DefaultMaxEntries) with as many distinct opaque
// tokens' answers, over loopback HTTP from the jwkstest issuer, and reports
// the heap it then holds per entry: the token's SHA-256 (the key), the
// parsed Result and the answer's body, which the Result's raw claims
// share, and the cache's own slabs, maps and ghost queues. "active-user"
// are Hydra-shaped answers for people's tokens (positive cache);
// "inactive" are random tokens answered {"active":false} (negative cache).
// An iteration is a whole fill; its time is mostly the HTTP calls.
func BenchmarkIntrospectCacheBytesPerEntry(b *testing.B) {
	const n = introspect.DefaultMaxEntries
	now := func() time.Time { return t0 }
	issuer := jwkstest.NewIssuer(b, jwkstest.Config{Now: now})
	active := make([]string, n)
	for i := range active {
		active[i] = issuer.Opaque(hydraUserClaims(issuer, i))
	}
	for _, tc := range []struct {
		name   string
		tokens []string
		// refused is the error each answer must give; nil: accepted.
		refused error
	}{
		{"active-user", active, nil},
		{"inactive", unknownOpaqueTokens(n), introspect.ErrInactive},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			var perEntry float64
			for b.Loop() {
				client, err := introspect.New(introspect.Config{Endpoint: issuer.IntrospectionURL(), Issuer: issuer.URL,
					Audience: issuer.Audience, HTTPClient: issuer.Client(), Now: now})
				require.NoError(b, err)
				before := testutil.LiveHeap()
				for _, token := range tc.tokens {
					res, err := client.Introspect(ctx, token)
					if tc.refused == nil && (err != nil || res == nil) {
						b.Fatal("refused:", err)
					}
					if tc.refused != nil && !errors.Is(err, tc.refused) {
						b.Fatal("not refused as expected:", err)
					}
				}
				after := testutil.LiveHeap()
				perEntry = float64(int64(after)-int64(before)) / n
				b.StopTimer()
				require.Equal(b, n, introspect.CachedEntries(client), "every answer is held")
				calls := introspect.Calls(client)
				for _, token := range tc.tokens[:100] {
					_, _ = client.Introspect(ctx, token)
				}
				require.Equal(b, calls, introspect.Calls(client), "held answers are served without a call")
				b.StartTimer()
			}
			b.ReportMetric(perEntry, "bytes/entry")
			b.ReportMetric(float64(len(tc.tokens[0])), "token-bytes")
		})
	}
}
