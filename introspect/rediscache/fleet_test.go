package rediscache_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/redistest"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/introspect/rediscache"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
)

// replica is one API replica: a Guard whose introspection validator
// shares its answers through Redis.
type replica struct {
	intro   *core.Introspection
	handler http.Handler
}

func newReplica(t *testing.T, iss *jwkstest.Issuer, srv *redistest.Server, prefix string) replica {
	t.Helper()
	// A timeout far above the default: on a loaded test machine a Redis
	// round trip can take longer than 100 ms, and a replica that gives up
	// on Redis asks the issuer itself (as it should), which would blur the
	// count of calls this test is about.
	cache, err := rediscache.New(rediscache.Config{Client: srv.Client(), Prefix: prefix, Timeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cache.Close() })
	intro, err := core.NewIntrospection(introspect.Config{Endpoint: iss.IntrospectionURL(), Issuer: iss.URL, Audience: iss.Audience,
		Shared: cache, Cache: introspect.CacheConfig{TTL: time.Minute}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	g, err := middleware.New(middleware.Config{Validator: intro, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return replica{intro: intro, handler: g.Protect(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))}
}

func (r replica) status(token string) int {
	req := httptest.NewRequest(http.MethodGet, "/data", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	r.handler.ServeHTTP(rec, req)
	return rec.Code
}

// TestFleet is the fleet test on a real Redis: four replicas
// sharing one introspection cache.
//   - 1,000 distinct opaque tokens, each sent to the four replicas in turn,
//     cost 1,000 introspection calls within one TTL, not 4,000.
//   - A drop by token, and one by client, made on one replica make all
//     four refuse the revoked tokens within 1 s.
//   - Stopping Redis causes no 5xx: the replicas go on with their own
//     caches and the issuer; once Redis is back, sharing resumes.
func TestFleet(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	srv := redistest.Start(t)
	prefix := testPrefix(t)
	fleet := make([]replica, 4)
	for i := range fleet {
		fleet[i] = newReplica(t, iss, srv, prefix)
	}
	waitSubscribed(t, srv.Client(), prefix, int64(len(fleet)))

	tokens := make([]string, 1000)
	for i := range tokens {
		tokens[i] = iss.OpaqueM2M(fmt.Sprintf("svc-%d", i), "data:read")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(tokens); i += 8 {
				for _, r := range fleet {
					code := r.status(tokens[i])
					mu.Lock()
					codes[code]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, map[int]int{http.StatusOK: 4000}, codes)
	assert.Equal(t, int64(1000), iss.IntrospectionCalls(), "1,000 tokens through 4 replicas: one call each")

	t.Run("drops reach every replica within 1 s", func(t *testing.T) {
		ctx := context.Background()
		for _, tc := range []struct {
			name  string
			token string
			drop  introspect.Drop
		}{
			{"by token", tokens[1], introspect.Drop{Token: tokens[1]}},
			{"by client", tokens[2], introspect.Drop{ClientID: "svc-2"}},
		} {
			iss.Revoke(tc.token)
			for _, r := range fleet {
				require.Equal(t, http.StatusOK, r.status(tc.token), "%s: cached as active before the drop", tc.name)
			}
			start := time.Now()
			require.NoError(t, fleet[3].intro.Drop(ctx, tc.drop))
			for i, r := range fleet {
				assert.Eventually(t, func() bool { return r.status(tc.token) == http.StatusUnauthorized }, time.Second-time.Since(start), 5*time.Millisecond,
					"%s: replica %d still accepts the revoked token", tc.name, i)
			}
			t.Logf("%s: all four replicas refuse the token %v after the drop", tc.name, time.Since(start).Round(time.Millisecond))
		}
	})

	t.Run("Redis stopped: no 5xx", func(t *testing.T) {
		srv.Stop()
		before := iss.IntrospectionCalls()
		fresh := iss.OpaqueM2M("svc-during-outage", "data:read")
		for i, r := range fleet {
			assert.Equal(t, http.StatusOK, r.status(tokens[10+i]), "replica %d, a token it has cached", i)
			assert.Equal(t, http.StatusOK, r.status(fresh), "replica %d, a token it has not seen", i)
			assert.Equal(t, http.StatusUnauthorized, r.status(tokens[1]), "replica %d, the revoked token", i)
		}
		assert.Equal(t, before+4, iss.IntrospectionCalls(), "without Redis each replica asks the issuer itself")

		srv.Restart()
		waitSubscribed(t, srv.Client(), prefix, int64(len(fleet)))
		after := iss.OpaqueM2M("svc-after-outage", "data:read")
		before = iss.IntrospectionCalls()
		for i, r := range fleet {
			require.Eventually(t, func() bool { return r.status(after) == http.StatusOK }, 5*time.Second, 5*time.Millisecond, "replica %d", i)
		}
		assert.Equal(t, before+1, iss.IntrospectionCalls(), "sharing resumes once Redis is back")
	})
}
