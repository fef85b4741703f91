package middleware_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/olympus/aegis/middleware/internal/metricstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/ratelimit"
	"github.com/olympus/aegis/scopes"
)

// recordedMetrics keeps every event a Guard reports to its Observer.
type recordedMetrics struct {
	core.NopObserver
	mu            sync.Mutex
	decisions     []core.Decision
	fetches       []core.KeySetFetch
	cacheLookups  []core.IntrospectionCacheLookup
	calls         []core.IntrospectionCall
	rateDecisions []core.RateLimitDecision
	limitLookups  []core.LimitLookup
}

func (m *recordedMetrics) Decision(_ context.Context, d core.Decision) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.decisions = append(m.decisions, d)
}

func (m *recordedMetrics) KeySetFetch(_ context.Context, f core.KeySetFetch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fetches = append(m.fetches, f)
}

func (m *recordedMetrics) IntrospectionCache(_ context.Context, c core.IntrospectionCacheLookup) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cacheLookups = append(m.cacheLookups, c)
}

func (m *recordedMetrics) IntrospectionCall(_ context.Context, c core.IntrospectionCall) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, c)
}

func (m *recordedMetrics) RateLimit(_ context.Context, d core.RateLimitDecision) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rateDecisions = append(m.rateDecisions, d)
}

func (m *recordedMetrics) LimitLookup(_ context.Context, l core.LimitLookup) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.limitLookups = append(m.limitLookups, l)
}

// observedEnv is a hybrid Guard with rate limits, an observer and a JSON
// debug log.
type observedEnv struct {
	iss     *jwkstest.Issuer
	guard   *middleware.Guard
	metrics *recordedMetrics
	logs    *testutil.Buffer
	handler http.Handler
}

func newObservedEnv(t *testing.T) *observedEnv {
	t.Helper()
	e := &observedEnv{
		iss:     jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock}),
		metrics: &recordedMetrics{},
		logs:    &testutil.Buffer{},
	}
	g := mustGuard(t, setup{Config: middleware.Config{
		Issuer: e.iss.URL, Audience: e.iss.Audience, Now: fixedClock,
		RateLimit: &middleware.RateLimitConfig{Limits: limits{"limited": 2}, Store: ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: fixedClock})},
		Logger:    slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Observer:  e.metrics,
	}, Mode: modeHybrid, Introspection: introspect.Config{Endpoint: e.iss.IntrospectionURL()}})
	e.guard = g
	mux := http.NewServeMux()
	mux.Handle("/read", g.Protect(http.HandlerFunc(ok), scopes.All("data:read")))
	mux.Handle("/write", g.Protect(http.HandlerFunc(ok), scopes.All("data:write")))
	e.handler = mux
	return e
}

// logRecords parses the JSON log lines.
func logRecords(t *testing.T, logs *testutil.Buffer) []map[string]any {
	t.Helper()
	var records []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), sc.Text())
		records = append(records, rec)
	}
	return records
}

// classOf is the class of a refusal the Guard answers with status.
func classOf(status int) aegis.Class {
	switch status {
	case http.StatusForbidden:
		return aegis.ClassForbidden
	case http.StatusTooManyRequests:
		return aegis.ClassLimited
	case http.StatusServiceUnavailable:
		return aegis.ClassUnavailable
	default:
		return aegis.ClassInvalid
	}
}

func TestDecisionEventsMetricsAndLogs(t *testing.T) {
	e := newObservedEnv(t)
	iss := e.iss
	m2m := iss.M2M("worker", "data:read")
	user := iss.User("user-42", "web-app", "alice@example.com", "data:read")
	opaque := iss.OpaqueM2M("batch", "data:read")
	revoked := iss.OpaqueM2M("batch", "data:read")
	iss.Revoke(revoked)
	limited := iss.M2M("limited", "data:read")
	forged := m2m[:len(m2m)-8] + "AAAAAAAA"

	accepted := func(kind middleware.Kind, method middleware.Method, client string, cached bool) core.Decision {
		return core.Decision{Outcome: core.OutcomeAccepted, Reason: aegis.ReasonAccepted,
			Kind: kind, Method: method, ClientID: client, Cached: cached}
	}
	refused := func(reason string, status int) core.Decision {
		return core.Decision{Outcome: core.OutcomeRefused, Reason: aegis.Reason(reason), Class: classOf(status)}
	}
	script := []struct {
		name   string
		path   string
		auth   string
		status int
		want   core.Decision
	}{
		{"no token", "/read", "", 401, refused("token_missing", 401)},
		{"malformed header", "/read", "Bearer a b", 400, refused("request_malformed", 400)},
		{"M2M JWT", "/read", "Bearer " + m2m, 200, accepted(middleware.KindM2M, middleware.MethodJWT, "worker", false)},
		{"same JWT again", "/read", "Bearer " + m2m, 200, accepted(middleware.KindM2M, middleware.MethodJWT, "worker", true)},
		{"user JWT", "/read", "Bearer " + user, 200, accepted(middleware.KindUser, middleware.MethodJWT, "web-app", false)},
		{"expired", "/read", "Bearer " + iss.Expired("worker", "data:read"), 401, refused("token_expired", 401)},
		{"wrong audience", "/read", "Bearer " + iss.WrongAudience("worker", "data:read"), 401, refused("audience_mismatch", 401)},
		{"forged signature", "/read", "Bearer " + forged, 401, refused("signature_invalid", 401)},
		{"missing scope", "/write", "Bearer " + m2m, 403, core.Decision{Outcome: core.OutcomeRefused,
			Reason: "insufficient_scope", Class: classOf(403), Kind: middleware.KindM2M, Method: middleware.MethodJWT, ClientID: "worker"}},
		{"opaque", "/read", "Bearer " + opaque, 200, accepted(middleware.KindM2M, middleware.MethodIntrospection, "batch", false)},
		{"opaque again", "/read", "Bearer " + opaque, 200, accepted(middleware.KindM2M, middleware.MethodIntrospection, "batch", false)},
		{"revoked opaque", "/read", "Bearer " + revoked, 401, refused("token_inactive", 401)},
		{"limited 1", "/read", "Bearer " + limited, 200, accepted(middleware.KindM2M, middleware.MethodJWT, "limited", false)},
		{"limited 2", "/read", "Bearer " + limited, 200, accepted(middleware.KindM2M, middleware.MethodJWT, "limited", true)},
		{"limited 3", "/read", "Bearer " + limited, 429, core.Decision{Outcome: core.OutcomeRefused,
			Reason: "rate_limited", Class: classOf(429), Kind: middleware.KindM2M, Method: middleware.MethodJWT, ClientID: "limited"}},
	}
	for _, step := range script {
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, get(step.path, step.auth))
		require.Equal(t, step.status, rec.Code, step.name)
	}

	m := e.metrics
	m.mu.Lock()
	defer m.mu.Unlock()

	t.Run("decisions", func(t *testing.T) {
		require.Len(t, m.decisions, len(script))
		for i, step := range script {
			assert.Equal(t, step.want, m.decisions[i], step.name)
		}
	})

	t.Run("dependencies", func(t *testing.T) {
		require.Len(t, m.fetches, 1, "one key-set fetch")
		assert.Equal(t, iss.URL, m.fetches[0].Issuer)
		assert.Equal(t, 1, m.fetches[0].Keys)
		assert.NoError(t, m.fetches[0].Err)

		var hits []bool
		for _, l := range m.cacheLookups {
			assert.Equal(t, iss.URL, l.Issuer)
			hits = append(hits, l.Hit)
		}
		assert.Equal(t, []bool{false, true, false}, hits, "opaque: miss, hit; revoked: miss")
		require.Len(t, m.calls, 2)
		assert.True(t, m.calls[0].Active)
		assert.False(t, m.calls[1].Active)
		assert.NoError(t, m.calls[1].Err, "an inactive answer is an answer")
	})

	t.Run("rate limits", func(t *testing.T) {
		// Every validated request looks its client's limit up: the 9
		// requests whose token was valid (scope and rate refusals too).
		assert.Len(t, m.limitLookups, 9)
		found := 0
		for _, l := range m.limitLookups {
			if l.Found {
				found++
				assert.Equal(t, "limited", l.ClientID)
			}
		}
		assert.Equal(t, 3, found)
		// Only "limited" has a limit; the others are unlimited and never
		// reach the store.
		assert.Equal(t, []core.RateLimitDecision{
			{ClientID: "limited", Allowed: true}, {ClientID: "limited", Allowed: true}, {ClientID: "limited", Allowed: false},
		}, m.rateDecisions)
	})

	t.Run("log records", func(t *testing.T) {
		var decisions []map[string]any
		for _, rec := range logRecords(t, e.logs) {
			if msg := rec["msg"].(string); msg == "aegis: request accepted" || msg == "aegis: request refused" {
				decisions = append(decisions, rec)
			}
		}
		require.Len(t, decisions, len(script))
		for i, step := range script {
			rec := decisions[i]
			level := "DEBUG"
			if step.want.Reason == aegis.ReasonAudienceMismatch || step.want.Reason == aegis.ReasonIssuerMismatch {
				// The first mismatch of each kind a minute is a warning
				// (TestMismatchWarnings).
				level = "WARN"
			}
			assert.Equal(t, level, rec["level"], step.name)
			assert.Equal(t, string(step.want.Outcome), rec["outcome"], step.name)
			assert.Equal(t, string(step.want.Reason), rec["reason"], step.name)
			assert.Equal(t, step.path, rec["path"], step.name)
			if step.want.Kind != "" {
				assert.Equal(t, string(step.want.Kind), rec["kind"], step.name)
				assert.Equal(t, step.want.ClientID, rec["client_id"], step.name)
			}
		}
	})

	t.Run("no token in any output", func(t *testing.T) {
		var out strings.Builder
		out.WriteString(e.logs.String())
		for _, d := range m.decisions {
			out.WriteString(string(d.Reason) + d.ClientID)
		}
		for _, tok := range []string{m2m, user, opaque, revoked, limited, forged} {
			sig := tok[strings.LastIndexByte(tok, '.')+1:]
			assert.NotContains(t, out.String(), sig)
		}
	})
}

// TestValidateRecordsDecisions: Validate, outside HTTP, reports too.
func TestValidateRecordsDecisions(t *testing.T) {
	e := newObservedEnv(t)
	_, err := e.guard.Validate(context.Background(), e.iss.M2M("worker"))
	require.NoError(t, err)
	_, err = e.guard.Validate(context.Background(), e.iss.Expired("worker"))
	require.Error(t, err)
	e.metrics.mu.Lock()
	defer e.metrics.mu.Unlock()
	assert.Equal(t, []core.Decision{
		{Outcome: core.OutcomeAccepted, Reason: aegis.ReasonAccepted, Kind: middleware.KindM2M, Method: middleware.MethodJWT, ClientID: "worker"},
		{Outcome: core.OutcomeRefused, Reason: "token_expired", Class: classOf(401)},
	}, e.metrics.decisions)
	assert.Len(t, e.logs.Lines(`"outcome":"accepted"`), 1)
	assert.Len(t, e.logs.Lines(`"reason":"token_expired"`), 1)
}

// TestDependencyFailuresAreMeasured: a failed key-set fetch and a failed
// introspection call are reported with their errors, and refusals that are
// the issuer's fault are logged at warn.
func TestDependencyFailuresAreMeasured(t *testing.T) {
	e := newObservedEnv(t)
	e.iss.ServeJWKSWith(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	e.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	for _, token := range []string{e.iss.M2M("worker", "data:read"), e.iss.OpaqueM2M("batch", "data:read")} {
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, get("/read", "Bearer "+token))
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	}
	e.metrics.mu.Lock()
	defer e.metrics.mu.Unlock()
	require.Len(t, e.metrics.fetches, 1)
	assert.Error(t, e.metrics.fetches[0].Err)
	assert.Zero(t, e.metrics.fetches[0].Keys)
	require.Len(t, e.metrics.calls, 1)
	assert.ErrorIs(t, e.metrics.calls[0].Err, introspect.ErrUnavailable)
	reasons := []string{}
	for _, d := range e.metrics.decisions {
		reasons = append(reasons, string(d.Reason))
	}
	assert.Equal(t, []string{"keys_unavailable", "introspection_unavailable"}, reasons)
	assert.Len(t, e.logs.Lines(`"level":"WARN"`, `"msg":"aegis: request refused"`), 2)
}

// TestUserHooksComposeWithObserver: a user's own key-set and introspection
// observers (jwks.Config.Observer, introspect.Config.Observer) get back, in Done, the context their Start returned (so they can
// end their own spans), while the Observer's Start hooks see theirs (its
// spans sit beneath the user's).
func TestUserHooksComposeWithObserver(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	type userKey struct{}
	start := func(name string) func(context.Context) context.Context {
		return func(ctx context.Context) context.Context { return context.WithValue(ctx, userKey{}, name) }
	}
	var mu sync.Mutex
	ended := map[string]bool{}
	done := func(ctx context.Context) {
		mu.Lock()
		defer mu.Unlock()
		if name, ok := ctx.Value(userKey{}).(string); ok {
			ended[name] = true
		}
	}
	obs := &parentObserver{key: userKey{}, parents: map[string]any{}}
	g := mustGuard(t, setup{Config: middleware.Config{
		Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock, Logger: quiet(), Observer: obs,
	}, Mode: modeHybrid,
		JWKS:          jwks.Config{Observer: metricstest.UserObserver{Start: start, Done: done}},
		Introspection: introspect.Config{Endpoint: iss.IntrospectionURL(), Observer: metricstest.UserObserver{Start: start, Done: done}},
	})
	for _, token := range []string{iss.M2M("worker"), iss.OpaqueM2M("batch")} {
		_, err := g.Validate(context.Background(), token)
		require.NoError(t, err)
	}

	mu.Lock()
	assert.Equal(t, map[string]bool{"user.fetch": true, "user.call": true}, ended, "each user Done got its own Start's context")
	mu.Unlock()
	obs.mu.Lock()
	defer obs.mu.Unlock()
	assert.Equal(t, map[string]any{"fetch": "user.fetch", "call": "user.call"}, obs.parents, "the observer starts beneath the user's hooks")
}

// parentObserver records the value under key of the contexts its Start
// hooks get.
type parentObserver struct {
	core.NopObserver
	key     any
	mu      sync.Mutex
	parents map[string]any
}

func (o *parentObserver) KeySetFetchStart(ctx context.Context, _ string) context.Context {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.parents["fetch"] = ctx.Value(o.key)
	return ctx
}

func (o *parentObserver) IntrospectionCallStart(ctx context.Context, _ string) context.Context {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.parents["call"] = ctx.Value(o.key)
	return ctx
}

// TestOutageWarningsAreRateLimited: while the issuer is down every request
// is refused with a 503; the log gets one warning per reason a second, the
// rest at debug, and the next warning says how many were held back.
func TestOutageWarningsAreRateLimited(t *testing.T) {
	clk := testutil.NewClock(t0)
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: clk.Now})
	iss.ServeJWKSWith(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	logs := &testutil.Buffer{}
	g, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: clk.Now,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	h := g.Protect(http.HandlerFunc(ok))
	token := iss.M2M("worker")
	send := func(n int) {
		for range n {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, get("/", "Bearer "+token))
			require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		}
	}
	refused := func(level string) int {
		return len(logs.Lines(`"level":"`+level+`"`, `"msg":"aegis: request refused"`, `"reason":"keys_unavailable"`))
	}

	send(50)
	assert.Equal(t, 1, refused("WARN"))
	assert.Equal(t, 49, refused("DEBUG"))

	clk.Advance(time.Second)
	send(1)
	assert.Equal(t, 2, refused("WARN"))
	assert.Len(t, logs.Lines(`"level":"WARN"`, `"held_back":49`), 1)
}

// TestMismatchWarnings: a wrong Issuer or Audience refuses every token, so
// the first issuer and the first audience mismatch of each minute are
// logged at warn, naming the configured value and the token's, never the
// token; the others of that minute at debug, with the same values.
func TestMismatchWarnings(t *testing.T) {
	clk := testutil.NewClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: clk.Now})
	logs := &testutil.Buffer{}
	g, err := middleware.New(middleware.Config{Issuer: iss.URL + "/", Audience: "https://api.typo.example", Now: clk.Now,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	h := g.Protect(http.HandlerFunc(ok))
	token := iss.M2M("worker")
	send := func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, get("/", "Bearer "+token))
		require.Equal(t, http.StatusUnauthorized, rec.Code)
	}
	issuerLines := func(level string) []string {
		return logs.Lines(`"level":"`+level+`"`, `"reason":"issuer_mismatch"`)
	}
	tests := []struct {
		name        string
		advance     time.Duration
		warn, debug int
	}{
		{"the first is a warning", 0, 1, 0},
		{"the rest of the minute at debug", 30 * time.Second, 1, 1},
		{"a minute later a warning again", 31 * time.Second, 2, 1},
	}
	for _, tt := range tests {
		clk.Advance(tt.advance)
		send()
		assert.Len(t, issuerLines("WARN"), tt.warn, tt.name)
		assert.Len(t, issuerLines("DEBUG"), tt.debug, tt.name)
	}
	for _, line := range append(issuerLines("WARN"), issuerLines("DEBUG")...) {
		assert.Contains(t, line, `iss \"`+iss.URL+`\" is not the configured \"`+iss.URL+`/\"`, "both values named")
		assert.NotContains(t, line, token, "never the token")
		assert.NotContains(t, line, strings.Split(token, ".")[2], "never the signature")
	}
	assert.Contains(t, issuerLines("WARN")[0], `"hint":"if every token is refused so, check the configured issuer`)

	// The audience: a token of the right issuer for another API.
	g2, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: "https://api.typo.example", Now: clk.Now,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	g2.Protect(http.HandlerFunc(ok)).ServeHTTP(rec, get("/", "Bearer "+token))
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	warns := logs.Lines(`"level":"WARN"`, `"reason":"audience_mismatch"`)
	require.Len(t, warns, 1)
	assert.Contains(t, warns[0], `aud \"`+iss.Audience+`\" is not the configured \"https://api.typo.example\"`)
	assert.NotContains(t, warns[0], token)
}
