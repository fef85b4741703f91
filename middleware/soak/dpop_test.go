package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/scopes"
)

// Shape of the DPoP soak.
const (
	dpopSoakKeys          = 4   // clients, each with its own key and bound token
	dpopSoakFreshWorkers  = 3   // send new proofs
	dpopSoakReplayWorkers = 2   // send proofs that already passed
	dpopSoakRaceWorkers   = 2   // send one new proof twice at once
	dpopSoakUsed          = 256 // proofs that passed, waiting to be replayed
	// dpopSoakStoreEntries bounds the replay store far above the proofs a
	// soak accepts in one window (60 s), so that no entry is evicted: the
	// soak checks replay detection, not eviction (the store is not
	// preallocated).
	dpopSoakStoreEntries = 1 << 23
)

// dpopSoakOutcome is what one request came back with.
type dpopSoakOutcome int

const (
	dpopPassed dpopSoakOutcome = iota
	dpopRefusedProof
	dpopOther
)

// TestSoakDPoPReplays runs DPoP traffic for the soak's duration against a
// Guard with an in-memory replay store: clients send their DPoP-bound
// tokens with fresh proofs (every one must pass), others send proofs that
// already passed again (every one must be refused, 401
// invalid_dpop_proof), and others send one fresh proof twice at once
// (exactly one of the two must pass). No replay may ever be accepted.
func TestSoakDPoPReplays(t *testing.T) {
	d := soakDuration(t)
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: jwks.ES256})
	store, err := dpop.NewMemoryStore(dpop.MemoryStoreConfig{MaxEntries: dpopSoakStoreEntries})
	require.NoError(t, err)
	verifier, err := dpop.New(dpop.Config{Replay: store})
	require.NoError(t, err)
	g, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Logger: quiet(),
		DPoP: middleware.DPoPConfig{Verifier: verifier}})
	require.NoError(t, err)
	server := httptest.NewServer(g.Protect(http.HandlerFunc(ok), scopes.All("data:read")))
	defer server.Close()
	target := server.URL + "/data"
	transport := &http.Transport{MaxIdleConnsPerHost: dpopSoakFreshWorkers + dpopSoakReplayWorkers + 2*dpopSoakRaceWorkers}
	defer transport.CloseIdleConnections()
	client := &http.Client{Timeout: soakClientTimeout, Transport: transport}

	type boundClient struct {
		key   *jwkstest.Key
		token string
	}
	clients := make([]boundClient, dpopSoakKeys)
	for i := range clients {
		key := jwkstest.NewKey(jwks.ES256)
		clients[i] = boundClient{key: key, token: iss.DPoPBound("svc", key, "data:read")}
	}
	type sent struct{ token, proof string }
	proofFor := func(c boundClient) sent {
		return sent{c.token, c.key.DPoPProof(jwkstest.DPoPProof{Method: http.MethodGet, URL: target, AccessToken: c.token})}
	}
	var otherCodes sync.Map // description → *atomic.Int64
	call := func(s sent) dpopSoakOutcome {
		req, err := http.NewRequest(http.MethodGet, target, nil)
		if !assert.NoError(t, err) {
			return dpopOther
		}
		req.Header.Set("Authorization", "DPoP "+s.token)
		req.Header.Set("DPoP", s.proof)
		resp, err := client.Do(req)
		if !assert.NoError(t, err) {
			return dpopOther
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return dpopPassed
		}
		challenges := strings.Join(resp.Header.Values("WWW-Authenticate"), "; ")
		if resp.StatusCode == http.StatusUnauthorized && strings.Contains(challenges, `error="invalid_dpop_proof"`) {
			return dpopRefusedProof
		}
		n, _ := otherCodes.LoadOrStore(resp.Status+" "+challenges, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		return dpopOther
	}
	require.Equal(t, dpopPassed, call(proofFor(clients[0])), "the Guard admits a DPoP-bound token before the soak")

	var (
		freshPassed, freshRefused                atomic.Int64
		replaysRefused, replaysAccepted          atomic.Int64
		racesOne, racesBoth, racesNone, raceNext atomic.Int64
	)
	used := make(chan sent, dpopSoakUsed)
	stop := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	var wg sync.WaitGroup
	for w := range dpopSoakFreshWorkers {
		wg.Go(func() {
			for i := w; !stopped(); i++ {
				s := proofFor(clients[i%len(clients)])
				if call(s) != dpopPassed {
					freshRefused.Add(1)
					continue
				}
				freshPassed.Add(1)
				select {
				case used <- s:
				default: // enough waiting already
				}
			}
		})
	}
	for range dpopSoakReplayWorkers {
		wg.Go(func() {
			for {
				var s sent
				select {
				case <-stop:
					return
				case s = <-used:
				}
				switch call(s) {
				case dpopPassed:
					replaysAccepted.Add(1)
				case dpopRefusedProof:
					replaysRefused.Add(1)
				}
			}
		})
	}
	for range dpopSoakRaceWorkers {
		wg.Go(func() {
			for !stopped() {
				s := proofFor(clients[int(raceNext.Add(1))%len(clients)])
				var passed atomic.Int64
				var pair sync.WaitGroup
				for range 2 {
					pair.Go(func() {
						if call(s) == dpopPassed {
							passed.Add(1)
						}
					})
				}
				pair.Wait()
				switch passed.Load() {
				case 1:
					racesOne.Add(1)
				case 2:
					racesBoth.Add(1)
				default:
					racesNone.Add(1)
				}
			}
		})
	}
	timer := time.NewTimer(d)
	<-timer.C
	close(stop)
	wg.Wait()

	t.Logf("DPoP soak %v: fresh proofs %d passed, %d refused; replays %d refused, %d accepted; concurrent pairs %d with one pass, %d with two, %d with none; replay store %d entries",
		d, freshPassed.Load(), freshRefused.Load(), replaysRefused.Load(), replaysAccepted.Load(), racesOne.Load(), racesBoth.Load(), racesNone.Load(), store.Len())
	otherCodes.Range(func(what, n any) bool {
		t.Errorf("unexpected answer %q (%d times)", what, n.(*atomic.Int64).Load())
		return true
	})
	assert.Zero(t, replaysAccepted.Load(), "replayed proofs accepted")
	assert.Zero(t, racesBoth.Load(), "a proof sent twice at once passed twice")
	assert.Zero(t, freshRefused.Load(), "fresh proofs refused")
	assert.Zero(t, racesNone.Load(), "a fresh proof sent twice at once never passed")
	assert.Positive(t, freshPassed.Load(), "fresh proofs passed")
	assert.Positive(t, replaysRefused.Load(), "replays were sent and refused")
	assert.Positive(t, racesOne.Load(), "concurrent pairs were sent")
	assert.Less(t, store.Len(), dpopSoakStoreEntries/8, "the replay store stayed far from its bound (no eviction)")
}
