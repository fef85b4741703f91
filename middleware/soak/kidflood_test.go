package middleware_test

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/scopes"
)

// Pace of the unknown-kid soak.
const (
	kidFloodEvery      = 10 * time.Millisecond // 100 made-up kids a second
	kidRotateEvery     = 4 * time.Second       // or a quarter of a shorter soak
	kidGenuineWorkers  = 4
	kidGenuineEvery    = 5 * time.Millisecond // per worker
	kidAcceptanceBound = time.Second          // after a rotation, every genuine token passes
)

// TestSoakUnknownKidFloodWithRotation (issue 13, point 10): for the soak's
// duration, a flood of 100 tokens a second under made-up kids runs against
// a Guard with the default key-set settings (a 10 s refetch cooldown),
// while the issuer rotates its key every few seconds and clients send
// tokens signed by the current key at once. It asserts both bounds: no
// genuine token is refused once a second has passed since its key was
// published, and the flood costs the issuer a few fetches a minute (beyond
// one per rotation). Every token is minted for its request, so none is
// served from the verified-token cache.
func TestSoakUnknownKidFloodWithRotation(t *testing.T) {
	d := soakDuration(t)
	rotateEvery := min(kidRotateEvery, d/4)
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: "ES256"})
	jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience,
		JWKS: jwks.Config{Logger: quiet()}})
	require.NoError(t, err)
	g, err := middleware.New(middleware.Config{Validator: core.Cached(jwt, core.CacheConfig{}), Logger: quiet()})
	require.NoError(t, err)
	server := httptest.NewServer(g.Protect(http.HandlerFunc(ok), scopes.All("data:read")))
	defer server.Close()
	transport := &http.Transport{MaxIdleConnsPerHost: kidGenuineWorkers + 1}
	defer transport.CloseIdleConnections()
	client := &http.Client{Timeout: soakClientTimeout, Transport: transport}
	call := func(token string) int {
		req, err := http.NewRequest(http.MethodGet, server.URL, nil)
		if !assert.NoError(t, err) {
			return 0
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if !assert.NoError(t, err) {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}

	// published[kid] is a time no later than the key's publication.
	var mu sync.Mutex
	published := map[string]time.Time{iss.CurrentKey().ID: time.Now()}
	require.Equal(t, http.StatusOK, call(iss.M2M("worker", "data:read")), "the Guard works before the soak")

	var (
		genuineOK, genuineEarly, genuineLate, floodSent, rotations atomic.Int64
		floodCodes                                                 sync.Map // status code → *atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	every := func(interval time.Duration, tick func()) {
		wg.Go(func() {
			ticker := time.NewTicker(interval)
			defer ticker.Stop()
			for {
				select {
				case <-stop:
					return
				case <-ticker.C:
					tick()
				}
			}
		})
	}
	foreign := jwkstest.NewKey("ES256")
	every(kidFloodEvery, func() {
		var b [9]byte
		_, _ = rand.Read(b[:])
		kid := "made-up-" + base64.RawURLEncoding.EncodeToString(b[:])
		code := call(iss.SignWith(foreign, map[string]any{"kid": kid}, iss.Claims("svc", "svc", "data:read")))
		n, _ := floodCodes.LoadOrStore(code, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		floodSent.Add(1)
	})
	every(rotateEvery, func() {
		before := time.Now()
		mu.Lock()
		defer mu.Unlock()
		published[iss.Rotate("ES256").ID] = before
		rotations.Add(1)
	})
	for range kidGenuineWorkers {
		every(kidGenuineEvery, func() {
			key := iss.CurrentKey()
			token := iss.SignWith(key, nil, iss.Claims("worker", "worker", "data:read"))
			start := time.Now()
			if call(token) == http.StatusOK {
				genuineOK.Add(1)
				return
			}
			mu.Lock()
			at, known := published[key.ID]
			mu.Unlock()
			if known && start.Sub(at) >= kidAcceptanceBound {
				if genuineLate.Add(1) <= 5 {
					t.Errorf("a token of key %s was refused %v after the key was published", key.ID, start.Sub(at))
				}
				return
			}
			genuineEarly.Add(1)
		})
	}
	fetchesBefore := iss.JWKSFetches()
	timer := time.NewTimer(d)
	<-timer.C
	close(stop)
	wg.Wait()

	fetches := iss.JWKSFetches() - fetchesBefore
	minutes := d.Minutes()
	t.Logf("soak %v: %d rotations; genuine: %d passed, %d refused within %v of a rotation, %d refused later; flood: %d sent; key set fetches: %d (%.1f a minute)",
		d, rotations.Load(), genuineOK.Load(), genuineEarly.Load(), kidAcceptanceBound, genuineLate.Load(), floodSent.Load(), fetches, float64(fetches)/minutes)
	floodCodes.Range(func(code, n any) bool {
		assert.Equal(t, http.StatusUnauthorized, code, "a flood token got %d (%d times)", code, n.(*atomic.Int64).Load())
		return true
	})
	assert.Zero(t, genuineLate.Load(), "genuine tokens refused a second or more after their key was published")
	assert.Positive(t, genuineOK.Load())
	assert.Positive(t, rotations.Load())
	assert.Greater(t, floodSent.Load(), int64(d/kidFloodEvery/2), "the flood ran at about its rate")
	// One fetch per cooldown for the flood, one a minute in the background
	// (the issuer sends no-store), one priority fetch per rotation, and one
	// more of each for a partial period.
	budget := int64(d/jwks.DefaultRefetchCooldown) + int64(d/jwks.DefaultMinRefreshInterval) + rotations.Load() + 3
	assert.LessOrEqual(t, fetches, budget, "key set fetches")
}
