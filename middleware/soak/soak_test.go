package middleware_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/redistest"
	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/ratelimit"
	"github.com/olympus/aegis/ratelimit/redisstore"
	"github.com/olympus/aegis/scopes"
)

// Timeouts of the Guards under soak; the clients wait far longer.
const (
	soakFetchTimeout  = time.Second            // key set requests
	soakIntroTimeout  = time.Second            // introspection calls
	soakRedisTimeout  = 250 * time.Millisecond // one rate-limit decision
	soakCooldown      = 200 * time.Millisecond // refetches for unknown kids
	soakSlowRedis     = 50 * time.Millisecond  // a PING slower than this: Redis is struggling
	soakClientTimeout = 10 * time.Second
	soakWorkers       = 8
	// soakGrace is how long after a fault ends its effects may last: a
	// call started during it, a cooldown, a failover probe.
	soakGrace = 2 * time.Second
	// soakRetiredSlack is how long after a Guard read a key set without a
	// key it may still accept that key's tokens (parsing, storing).
	soakRetiredSlack = time.Second
)

// soakDuration is AEGIS_SOAK_DURATION (a Go duration), 3s by default.
func soakDuration(t *testing.T) time.Duration {
	s := os.Getenv("AEGIS_SOAK_DURATION")
	if s == "" {
		return 3 * time.Second
	}
	d, err := time.ParseDuration(s)
	require.NoError(t, err, "AEGIS_SOAK_DURATION")
	require.Positive(t, d, "AEGIS_SOAK_DURATION")
	return d
}

type soakClass int

const (
	scValid        soakClass = iota // current key, M2M and user
	scFresh                         // current key, minted for the request (no verified-cache hit)
	scPrev                          // previous key, still published
	scOpaque                        // active opaque token
	scClosedJWT                     // valid JWT on the fail-closed route
	scClosedOpaque                  // active opaque token on the fail-closed route
	scRetired                       // key unpublished
	scGreedy                        // client limited to 1 per minute
	scNoScope                       // valid token without data:read
	scExpired
	scWrongAud
	scForeign    // signed by an unknown key under the issuer's kid
	scTampered   // payload changed, signature kept
	scConfused   // HS256 keyed with the issuer's public key
	scNone       // alg none
	scUnknownKid // signed by an unknown key under an unknown kid
	scRevoked    // revoked opaque token
	scJunk
	scMissing // no usable credentials
	soakClasses
)

type soakKind int

const (
	soakValidKind   soakKind = iota // should pass; a loose lower bound
	soakNeverKind                   // must never pass
	soakRetiredKind                 // may pass until the Guard has read a key set without its key
	soakGreedyKind                  // passes a bounded number of times
)

var soakInfo = [soakClasses]struct {
	name    string
	weight  int
	kind    soakKind
	route   string
	deps    []soakDep // what may explain a 503
	success string    // recovery evidence it gives when it passes
}{
	scValid:        {"valid", 22, soakValidKind, "open", []soakDep{soakJWKS}, "jwt"},
	scFresh:        {"fresh", 3, soakValidKind, "open", []soakDep{soakJWKS}, "jwt"},
	scPrev:         {"prev-key", 8, soakValidKind, "open", []soakDep{soakJWKS}, "jwt"},
	scOpaque:       {"opaque", 12, soakValidKind, "open", []soakDep{soakIntro}, "opaque"},
	scClosedJWT:    {"closed-jwt", 5, soakValidKind, "closed", []soakDep{soakJWKS, soakRedis}, "closed"},
	scClosedOpaque: {"closed-opaque", 4, soakValidKind, "closed", []soakDep{soakIntro, soakRedis}, "closed"},
	scRetired:      {"retired-key", 5, soakRetiredKind, "open", []soakDep{soakJWKS}, ""},
	scGreedy:       {"over-limit", 5, soakGreedyKind, "open", []soakDep{soakJWKS}, ""},
	scNoScope:      {"no-scope", 2, soakNeverKind, "open", []soakDep{soakJWKS}, ""},
	scExpired:      {"expired", 3, soakNeverKind, "open", []soakDep{soakJWKS}, ""},
	scWrongAud:     {"wrong-aud", 2, soakNeverKind, "open", []soakDep{soakJWKS}, ""},
	scForeign:      {"forged-key", 3, soakNeverKind, "open", []soakDep{soakJWKS}, ""},
	scTampered:     {"tampered", 3, soakNeverKind, "open", []soakDep{soakJWKS}, ""},
	scConfused:     {"hs256", 2, soakNeverKind, "open", []soakDep{soakJWKS}, ""},
	scNone:         {"alg-none", 2, soakNeverKind, "open", []soakDep{soakJWKS}, ""},
	scUnknownKid:   {"unknown-kid", 3, soakNeverKind, "open", []soakDep{soakJWKS}, ""},
	scRevoked:      {"revoked", 4, soakNeverKind, "open", []soakDep{soakIntro}, ""},
	scJunk:         {"junk", 5, soakNeverKind, "open", []soakDep{soakJWKS, soakIntro}, ""},
	scMissing:      {"missing", 3, soakNeverKind, "open", nil, ""},
}

type soakBucket int

const (
	sb2xx soakBucket = iota
	sb400
	sb401
	sb403
	sb429
	sb503
	sbOther4xx
	sbOther5xx
	sbClientErr
	soakBuckets
)

var soakBucketNames = [soakBuckets]string{"2xx", "400", "401", "403", "429", "503", "4xx", "5xx!", "err!"}

func soakBucketOf(code int) soakBucket {
	switch {
	case code >= 200 && code < 300:
		return sb2xx
	case code == 400:
		return sb400
	case code == 401:
		return sb401
	case code == 403:
		return sb403
	case code == 429:
		return sb429
	case code == 503:
		return sb503
	case code >= 400 && code < 500:
		return sbOther4xx
	}
	return sbOther5xx
}

// soakStats are the per-class counters and the evidence of recovery.
type soakStats struct {
	counts [soakClasses][soakBuckets]atomic.Int64

	noRetryAfter atomic.Int64 // 429 or 503 without Retry-After
	stray503     atomic.Int64 // 503 with no fault of a dependency to explain it
	wrong503     atomic.Int64 // 503 for a reason the request's path cannot have
	echoed       atomic.Int64 // a response body containing the token
	retiredLate  atomic.Int64 // retired key accepted after the Guard read a set without it
	valid        atomic.Int64
	validOK      atomic.Int64
	clean        atomic.Int64 // valid requests meeting no fault of their dependencies
	cleanOK      atomic.Int64

	mu       sync.Mutex
	reasons  map[string]int       // "class status detail" of the 429s and 5xx
	failures map[string]int       // "class status detail [faults met]" of valid tokens refused
	lastOK   map[string]time.Time // recovery kind → latest start of a pass
	okByKid  map[string]time.Time
	samples  []string
}

func (s *soakStats) sample(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) < 20 {
		s.samples = append(s.samples, fmt.Sprintf(format, args...))
	}
}

func (s *soakStats) sum(classes func(soakClass) bool, b soakBucket) int64 {
	var n int64
	for c := range soakClasses {
		if classes(c) {
			n += s.counts[c][b].Load()
		}
	}
	return n
}

// summary is one line: each class's total and its non-zero buckets.
func (s *soakStats) summary() string {
	var parts []string
	var total int64
	for c := range soakClasses {
		var n int64
		var bs []string
		for b := range soakBuckets {
			if v := s.counts[c][b].Load(); v > 0 {
				n += v
				bs = append(bs, fmt.Sprintf("%s:%d", soakBucketNames[b], v))
			}
		}
		total += n
		parts = append(parts, fmt.Sprintf("%s=%d(%s)", soakInfo[c].name, n, strings.Join(bs, " ")))
	}
	return fmt.Sprintf("%d requests: %s", total, strings.Join(parts, " "))
}

// soak is one run: the server under test, its faults and its clients.
type soak struct {
	url     string
	client  *http.Client
	iss     *jwkstest.Issuer
	keys    *soakKeySet
	faults  *soakFaults
	pools   atomic.Pointer[soakPools]
	sent    *soakSent
	stats   *soakStats
	stop    <-chan struct{}
	weights int
}

// TestSoak runs a hybrid Guard behind a real HTTP server, with per-client
// limits in a real Redis, under load from concurrent clients while the
// issuer's key set flaps (500s, hangs, garbage, good answers) and its key
// rotates, the introspection endpoint fails in bursts and hangs, and Redis
// is restarted and paused. The route /open limits with a fail-open
// Failover (Redis down: decide in memory, never refuse), /closed with a
// fail-closed one (Redis down: 503 with Retry-After).
//
// It runs for AEGIS_SOAK_DURATION (default 3s): faults during the first
// half, then all dependencies healthy, so that recovery can be seen. Keys
// are ES256 so that rotating and minting stay cheap under -race.
func TestSoak(t *testing.T) {
	dur := soakDuration(t)
	step := min(max(dur/20, 150*time.Millisecond), 500*time.Millisecond)
	seed := uint64(time.Now().UnixNano())

	redisServer := redistest.Start(t)
	rdb := redisServer.Client()
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: "ES256"})
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	t.Cleanup(halt) // before the issuer closes: hung handlers return

	hangs := &soakHangs{stop: stop, cap: 5 * time.Second}
	keys := newSoakKeySet(iss, hangs)
	keys.setPhase("good")
	intro := &soakIntrospection{iss: iss, hangs: hangs}
	faults := newSoakFaults()
	logs := &testutil.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	newGuard := func(tag string, policy ratelimit.FailurePolicy) *middleware.Guard {
		redisStore, err := redisstore.New(redisstore.Config{Client: rdb, Prefix: "soak:" + tag + ":", Timeout: soakRedisTimeout})
		require.NoError(t, err)
		fc := ratelimit.FailoverConfig{Primary: redisStore, Policy: policy, Logger: logger, Cooldown: 100 * time.Millisecond}
		if policy == ratelimit.FailOpen {
			fc.Fallback = ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})
		}
		store, err := ratelimit.NewFailover(fc)
		require.NoError(t, err)
		transport := &http.Transport{MaxIdleConnsPerHost: 16}
		t.Cleanup(transport.CloseIdleConnections)
		client := &http.Client{Transport: &soakTransport{guard: tag, base: transport, keys: keys}}
		jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience,
			JWKS: jwks.Config{FetchTimeout: soakFetchTimeout, RefetchCooldown: soakCooldown, MinRefreshInterval: 100 * time.Millisecond,
				HTTPClient: client, Logger: logger}})
		require.NoError(t, err)
		intro, err := core.NewIntrospection(introspect.Config{Issuer: iss.URL, Audience: iss.Audience,
			Endpoint: iss.IntrospectionURL(), Timeout: soakIntroTimeout, HTTPClient: client, Logger: logger,
			Cache: introspect.CacheConfig{TTL: 250 * time.Millisecond, NegativeTTL: 250 * time.Millisecond}})
		require.NoError(t, err)
		g, err := middleware.New(middleware.Config{
			Validator: core.Hybrid(core.ByIssuer(map[string]core.Validator{iss.URL: core.Cached(jwt, core.CacheConfig{})}), intro),
			RateLimit: &middleware.RateLimitConfig{Store: store, Limits: ratelimit.Static{"greedy": 1}, Default: 1_000_000},
			Logger:    logger,
		})
		require.NoError(t, err)
		return g
	}
	mux := http.NewServeMux()
	mux.Handle("GET /open", newGuard("open", ratelimit.FailOpen).Protect(http.HandlerFunc(ok), scopes.All("data:read")))
	mux.Handle("GET /closed", newGuard("closed", ratelimit.FailClosed).Protect(http.HandlerFunc(ok), scopes.All("data:read")))
	server := httptest.NewServer(mux)
	defer server.Close()
	clientTransport := &http.Transport{MaxIdleConnsPerHost: soakWorkers}
	defer clientTransport.CloseIdleConnections()

	s := &soak{url: server.URL, client: &http.Client{Timeout: soakClientTimeout, Transport: clientTransport},
		iss: iss, keys: keys, faults: faults, sent: &soakSent{}, stop: stop,
		stats: &soakStats{reasons: map[string]int{}, failures: map[string]int{}, lastOK: map[string]time.Time{}, okByKid: map[string]time.Time{}}}
	for _, info := range soakInfo {
		s.weights += info.weight
	}
	foreign := jwkstest.NewKey("ES256")
	pools := mintPools(iss, iss.CurrentKey(), foreign, nil, s.sent)
	for i := range 4 {
		id := fmt.Sprint(i)
		pools.opaque = append(pools.opaque, soakTok{s: iss.OpaqueM2M("svc-o"+id, "data:read")},
			soakTok{s: iss.OpaqueUser("user-o"+id, "web-app", "o"+id+"@example.com", "data:read")})
		revoked := iss.OpaqueM2M("svc-r"+id, "data:read")
		iss.Revoke(revoked)
		pools.revoked = append(pools.revoked, soakTok{s: revoked})
	}
	for _, tok := range slices.Concat(pools.opaque, pools.revoked) {
		s.sent.add(tok.s)
	}
	s.pools.Store(pools)

	// Warm up: both Guards hold the keys and answer before any fault.
	for _, route := range []string{"/open", "/closed"} {
		for _, tok := range []string{pools.valid[0].s, pools.opaque[0].s} {
			req, err := http.NewRequest(http.MethodGet, s.url+route, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := s.client.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, "warm-up on %s", route)
		}
	}

	var wg sync.WaitGroup
	for i := range soakWorkers {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		wg.Go(func() { s.work(rng) })
	}
	t.Cleanup(func() { halt(); wg.Wait() }) // should the test end early

	// The conductor: one step of the script per tick during the first half
	// of the run, then every dependency healthy until the end. Redis is
	// handled here, on the test's goroutine (redistest may call Fatal).
	type soakStep struct{ jwks, intro, redis string }
	// Redis stays down for three steps, longer than a decision's timeout
	// (go-redis retries through shorter outages, so the fail-closed route
	// would never refuse).
	script := []soakStep{
		{jwks: "500", intro: "good"},
		{jwks: "hang", intro: "5xx", redis: "stop"},
		{jwks: "good", intro: "5xx"},
		{jwks: "garbage", intro: "hang"},
		{jwks: "good", intro: "good", redis: "restart"},
		{jwks: "500", intro: "good", redis: "pause"},
		{jwks: "hang", intro: "5xx"},
		{jwks: "good", intro: "good"},
		{jwks: "garbage", intro: "hang", redis: "resume"},
		{jwks: "good", intro: "good", redis: "stop"},
		{jwks: "good", intro: "5xx"},
		{jwks: "garbage", intro: "good"},
		{jwks: "good", intro: "good", redis: "restart"},
		{jwks: "good", intro: "good"},
	}
	jwksPhase, introPhase, redisState := "good", "good", "up"
	setJWKS := func(p string) {
		if p == jwksPhase {
			return
		}
		if p != "good" {
			faults.end("jwks " + jwksPhase)
			faults.begin(soakJWKS, "jwks "+p)
			keys.setPhase(p)
		} else {
			keys.setPhase(p)
			faults.end("jwks " + jwksPhase)
		}
		jwksPhase = p
	}
	setIntro := func(p string) {
		if p == introPhase {
			return
		}
		if p != "good" {
			faults.end("introspection " + introPhase)
			faults.begin(soakIntro, "introspection "+p)
			intro.setPhase(p)
		} else {
			intro.setPhase(p)
			faults.end("introspection " + introPhase)
		}
		introPhase = p
	}
	setRedis := func(action string) {
		switch {
		case action == "stop" && redisState == "up":
			faults.begin(soakRedis, "redis stopped")
			redisServer.Stop()
			redisState = "stopped"
		case action == "restart" && redisState == "stopped":
			redisServer.Restart()
			faults.end("redis stopped")
			redisState = "up"
		case action == "pause" && redisState == "up":
			faults.begin(soakRedis, "redis paused")
			redisServer.Pause()
			redisState = "paused"
		case action == "resume" && redisState == "paused":
			redisServer.Resume()
			faults.end("redis paused")
			redisState = "up"
		}
	}
	apply := func(st soakStep) {
		setJWKS(st.jwks)
		setIntro(st.intro)
		setRedis(st.redis)
	}
	heal := func() {
		setJWKS("good")
		setIntro("good")
		setRedis("restart")
		setRedis("resume")
	}

	// The rotator, on its own ticker since generating a key and minting
	// tokens takes a while under -race: a new key (signing at once, as
	// Hydra does), then the previous one unpublished, and so on; the key
	// set is flapping meanwhile, so the new kid is refetched through faults.
	rotatorStop := make(chan struct{})
	var rotator sync.WaitGroup
	stopRotator := sync.OnceFunc(func() { close(rotatorStop); rotator.Wait() })
	t.Cleanup(stopRotator)
	rotator.Go(func() {
		tick := time.NewTicker(step * 5 / 2)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-rotatorStop:
				return
			case <-tick.C:
			}
			if n%2 == 0 {
				faults.begin(soakJWKS, "key rotation")
				k := keys.rotate()
				s.pools.Store(mintPools(iss, k, foreign, s.pools.Load(), s.sent))
				faults.end("key rotation")
			} else {
				keys.unpublishAllBut(iss.CurrentKey())
				s.pools.Store(s.pools.Load().retire())
			}
		}
	})

	// Redis is also down when it is slow: under CPU contention (-race, a
	// busy CI machine) a command can outlast the store's timeout, and the
	// fail-closed route then rightly refuses for a cooldown. A probe of its
	// own records when Redis answers a PING late or not at all, and when
	// this process itself stalled (its ticks came late).
	probe := redisServer.Client()
	var prober sync.WaitGroup
	t.Cleanup(func() { halt(); prober.Wait() })
	prober.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			from := time.Now()
			// A tick far behind its time: this process did not run.
			if from.Sub(last) > 20*time.Millisecond+soakSlowRedis {
				faults.observe(soakStall, "stalled (observed)", last, from)
			}
			last = from
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := probe.Ping(ctx).Err()
			cancel()
			if to := time.Now(); err != nil || to.Sub(from) > soakSlowRedis {
				faults.observe(soakRedis, "redis slow or down (observed)", from, to)
			}
		}
	})

	start := time.Now()
	faultsUntil := start.Add(dur / 2)
	deadline := time.NewTimer(dur)
	ticker := time.NewTicker(step)
	steps, healed := 0, false
run:
	for {
		select {
		case <-deadline.C:
			break run
		case now := <-ticker.C:
			switch {
			case now.Before(faultsUntil):
				apply(script[steps%len(script)])
				steps++
			case !healed:
				stopRotator()
				heal()
				healed = true
			}
		}
	}
	ticker.Stop()
	if !healed {
		stopRotator()
		heal()
	}
	halt()
	wg.Wait()
	prober.Wait()
	clientTransport.CloseIdleConnections()
	server.Close()

	st := s.stats
	t.Logf("soak %v (seed %d, %d workers, %d fault steps of %v): %s", dur, seed, soakWorkers, steps, step, st.summary())
	ends, deps, counts := faults.lastEnds()
	t.Logf("faults: windows %v; key set hits %v; introspection 5xx %d, hangs %d; hangs released by the caller %d (longest %v), at stop %d, capped %d; valid %d/%d passed, clean %d/%d",
		counts, keys.hitCounts(), intro.n5xx.Load(), intro.nHang.Load(), hangs.released.Load(), time.Duration(hangs.longest.Load()),
		hangs.stopped.Load(), hangs.capped.Load(), st.validOK.Load(), st.valid.Load(), st.cleanOK.Load(), st.clean.Load())
	t.Logf("429 and 5xx by class and detail: %v", st.reasons)
	t.Logf("valid tokens refused, by class, detail and faults met: %v", st.failures)
	for _, smp := range st.samples {
		t.Log("sample: " + smp)
	}

	// Every fault of the script happened.
	for _, label := range []string{"jwks 500", "jwks hang", "jwks garbage", "key rotation",
		"introspection 5xx", "introspection hang", "redis stopped", "redis paused"} {
		assert.Positive(t, counts[label], "fault %q never injected", label)
	}
	hits := keys.hitCounts()
	assert.Positive(t, hits["500"]+hits["hang"]+hits["garbage"], "no key set request met a fault")
	assert.Positive(t, intro.n5xx.Load()+intro.nHang.Load(), "no introspection call met a fault")

	// No 500, no 5xx but 503 with Retry-After, each explained by a fault.
	all := func(soakClass) bool { return true }
	assert.Zero(t, st.sum(all, sbOther5xx), "5xx other than 503")
	assert.Zero(t, st.noRetryAfter.Load(), "429 or 503 without Retry-After")
	assert.Zero(t, st.stray503.Load(), "503 while no dependency of the request was failing")
	assert.Zero(t, st.wrong503.Load(), "503 for a reason that cannot apply (keys cached, limiter failing open, token not introspected)")
	// Every request answered.
	assert.Zero(t, st.sum(all, sbClientErr), "requests without an answer (client timeout %v)", soakClientTimeout)
	// Zero tolerance.
	for c := range soakClasses {
		if soakInfo[c].kind == soakNeverKind {
			assert.Zero(t, st.counts[c][sb2xx].Load(), "%s token accepted", soakInfo[c].name)
		}
	}
	assert.Zero(t, st.retiredLate.Load(), "token of an unpublished key accepted after the Guard read a key set without it")
	assert.Zero(t, st.echoed.Load(), "token in a response body")
	assert.Zero(t, hangs.capped.Load(), "a hung dependency was not given up by the Guard")
	// Over the limit: 429s, bar one pass per fresh bucket (each Redis
	// restart empties Redis, the in-memory fallback has its own, and both
	// refill after a minute).
	greedyBound := int64(2 + counts["redis stopped"] + 2*int(math.Ceil(dur.Minutes())))
	assert.LessOrEqual(t, st.counts[scGreedy][sb2xx].Load(), greedyBound, "over-limit requests passed")
	assert.Positive(t, st.counts[scGreedy][sb429].Load(), "no 429 for the client over its limit")
	// Valid tokens pass most of the time.
	assert.Greater(t, float64(st.validOK.Load()), 0.5*float64(st.valid.Load()), "valid requests that passed")
	if st.clean.Load() >= 50 {
		assert.GreaterOrEqual(t, float64(st.cleanOK.Load()), 0.9*float64(st.clean.Load()),
			"valid requests meeting no fault of their dependencies that passed")
	}
	// Recovery: a pass after the end of each fault.
	st.mu.Lock()
	for label, end := range ends {
		if !assert.False(t, end.IsZero(), "fault %q never ended", label) {
			continue
		}
		if strings.HasSuffix(label, "(observed)") {
			continue
		}
		kind := map[soakDep]string{soakJWKS: "jwt", soakIntro: "opaque", soakRedis: "closed"}[deps[label]]
		assert.True(t, st.lastOK[kind].After(end), "no %s pass after the end of %q", kind, label)
	}
	_, rotatedOK := st.okByKid[iss.CurrentKey().ID]
	st.mu.Unlock()
	assert.True(t, rotatedOK, "no token of the last rotated key passed")
	n, err := rdb.Exists(t.Context(), "soak:open:greedy").Result()
	if assert.NoError(t, err) {
		assert.Equal(t, int64(1), n, "the fail-open Guard decides in Redis again")
	}

	// No token in the logs.
	out := logs.String()
	assert.NotEmpty(t, out)
	leaks := soakLeaks(out, s.sent.all())
	assert.Empty(t, leaks, "token material in the logs")
	if t.Failed() {
		if f := os.Getenv("AEGIS_SOAK_LOG"); f != "" {
			_ = os.WriteFile(f, []byte(out), 0o644)
		}
		for _, line := range logs.Lines("rate-limit store") {
			t.Log("log: " + line)
		}
	}
}

// work sends requests until the run stops.
func (s *soak) work(rng *rand.Rand) {
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		s.one(rng)
	}
}

func (s *soak) pick(rng *rand.Rand) soakClass {
	n := rng.IntN(s.weights)
	for c, info := range soakInfo {
		if n < info.weight {
			return soakClass(c)
		}
		n -= info.weight
	}
	panic("unreachable")
}

func soakOne(rng *rand.Rand, toks []soakTok) (soakTok, bool) {
	if len(toks) == 0 {
		return soakTok{}, false
	}
	return toks[rng.IntN(len(toks))], true
}

// one sends one request of a random class and records its answer.
func (s *soak) one(rng *rand.Rand) {
	c := s.pick(rng)
	p := s.pools.Load()
	var tok soakTok
	var auth string
	have := true
	switch c {
	case scValid, scClosedJWT:
		tok, have = soakOne(rng, p.valid)
	case scFresh:
		key := s.iss.CurrentKey()
		tok = soakTok{s: s.iss.SignWith(key, nil, s.iss.Claims("svc-fresh", "svc-fresh", "data:read")), kid: key.ID}
		s.sent.add(tok.s)
	case scPrev:
		tok, have = soakOne(rng, p.prev)
	case scOpaque, scClosedOpaque:
		tok, have = soakOne(rng, p.opaque)
	case scRetired:
		tok, have = soakOne(rng, p.retired)
	case scGreedy:
		tok = p.greedy
	case scNoScope:
		tok = p.noScope
	case scExpired:
		tok, have = soakOne(rng, p.expired)
	case scWrongAud:
		tok, have = soakOne(rng, p.wrongAud)
	case scForeign:
		tok, have = soakOne(rng, p.foreign)
	case scTampered:
		tok, have = soakOne(rng, p.tampered)
	case scConfused:
		tok, have = soakOne(rng, p.confused)
	case scNone:
		tok, have = soakOne(rng, p.none)
	case scUnknownKid:
		tok, have = soakOne(rng, p.unknownKid)
	case scRevoked:
		tok, have = soakOne(rng, p.revoked)
	case scJunk:
		auth, tok.s = soakJunk(rng)
		s.sent.add(tok.s)
	case scMissing:
		auth = soakMissing(rng)
	}
	if !have {
		return // no such token yet (before the first rotation)
	}
	if auth == "" && tok.s != "" {
		auth = "Bearer " + tok.s
	}
	info := soakInfo[c]
	req, err := http.NewRequest(http.MethodGet, s.url+"/"+info.route, nil)
	if err != nil {
		panic(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	start := time.Now()
	resp, err := s.client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}
	end := time.Now()
	s.record(c, tok, start, end, resp, body, err)
}

func (s *soak) record(c soakClass, tok soakTok, start, end time.Time, resp *http.Response, body []byte, err error) {
	st, info := s.stats, soakInfo[c]
	if err != nil {
		st.counts[c][sbClientErr].Add(1)
		st.sample("%s: no answer after %v: %v", info.name, end.Sub(start), err)
		return
	}
	code := resp.StatusCode
	b := soakBucketOf(code)
	st.counts[c][b].Add(1)
	detail := strings.TrimSpace(string(body))
	if len(detail) > 200 {
		detail = detail[:200]
	}
	if code == 429 || code >= 500 {
		st.mu.Lock()
		st.reasons[fmt.Sprintf("%s %d %s", info.name, code, soakDetail(body))]++
		st.mu.Unlock()
	}
	if b == sbOther5xx {
		st.sample("%s: %d %s", info.name, code, detail)
	}
	if (code == 429 || code == 503) && resp.Header.Get("Retry-After") == "" {
		st.noRetryAfter.Add(1)
		st.sample("%s: %d without Retry-After: %s", info.name, code, detail)
	}
	if code == 503 {
		// Keys are cached from the warm-up on, so "keys unavailable" only
		// for a kid the cached keys lack while the key set cannot be
		// fetched (a rotation during a fault); the limiter fails open on
		// /open; only tokens that are introspected wait for introspection.
		d := soakDetail(body)
		limiter := strings.Contains(d, "rate limiter") && info.route == "closed"
		introspection := strings.Contains(d, "issuer cannot confirm") && slices.Contains(info.deps, soakIntro)
		keys := strings.Contains(d, "issuer's keys cannot be obtained") && slices.Contains(info.deps, soakJWKS)
		if !limiter && !introspection && !keys {
			st.wrong503.Add(1)
			st.sample("%s: 503 on /%s: %s", info.name, info.route, d)
		}
	}
	if code == 503 && !s.faults.overlaps(info.deps, start, end, soakGrace) {
		st.stray503.Add(1)
		st.sample("%s: 503 at %s (took %v) with no fault of %v: %s", info.name, start.Format("15:04:05.000"), end.Sub(start), info.deps, detail)
	}
	for _, piece := range soakPieces(tok.s, 16) {
		if strings.Contains(string(body), piece) {
			st.echoed.Add(1)
			st.sample("%s: token in the response body", info.name)
			break
		}
	}
	passed := b == sb2xx
	switch info.kind {
	case soakValidKind:
		st.valid.Add(1)
		clean := !s.faults.overlaps(info.deps, start, end, soakGrace)
		if clean {
			st.clean.Add(1)
		}
		if passed {
			st.validOK.Add(1)
			if clean {
				st.cleanOK.Add(1)
			}
			st.mu.Lock()
			if start.After(st.lastOK[info.success]) {
				st.lastOK[info.success] = start
			}
			if tok.kid != "" && start.After(st.okByKid[tok.kid]) {
				st.okByKid[tok.kid] = start
			}
			st.mu.Unlock()
		} else {
			if clean {
				st.sample("%s: %d outside any fault window: %s", info.name, code, detail)
			}
			// Why a valid token failed: which faults it met.
			var met []string
			for _, prefix := range []string{"jwks ", "key rotation", "introspection ", "redis "} {
				if s.faults.overlapsLabel(prefix, start, end, soakGrace) {
					met = append(met, strings.TrimSpace(prefix))
				}
			}
			st.mu.Lock()
			st.failures[fmt.Sprintf("%s %d %s [%s]", info.name, code, soakDetail(body), strings.Join(met, ","))]++
			st.mu.Unlock()
		}
	case soakRetiredKind:
		if passed && s.keys.droppedBefore(info.route, tok.kid, start.Add(-soakRetiredSlack)) {
			st.retiredLate.Add(1)
			st.sample("%s: key %s accepted after the Guard read a key set without it", info.name, tok.kid)
		}
	case soakNeverKind:
		if passed {
			st.sample("%s: ACCEPTED (%d)", info.name, code)
		}
	}
}

// soakDetail is the detail of a problem+json body, or its start.
func soakDetail(body []byte) string {
	var p struct{ Detail string }
	if json.Unmarshal(body, &p) == nil && p.Detail != "" {
		return p.Detail
	}
	if len(body) > 60 {
		body = body[:60]
	}
	return string(body)
}
