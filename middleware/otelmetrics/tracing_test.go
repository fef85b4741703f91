package otelmetrics_test

import (
	"context"
	"io"
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
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/otelmetrics"
	"github.com/olympus/aegis/ratelimit"
	"github.com/olympus/aegis/scopes"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return t0 }

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func okHandler(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

func get(path, authorization string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return req
}

// newSpanRecorder returns a recorder and a tracer provider that feeds it,
// shut down when the test ends.
func newSpanRecorder(t *testing.T) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return spans, tp
}

// decisionRecorder keeps the verdicts a Guard reports, next to tracing.
type decisionRecorder struct {
	core.NopObserver
	mu        sync.Mutex
	decisions []core.Decision
}

func (r *decisionRecorder) Decision(_ context.Context, d core.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decisions = append(r.decisions, d)
}

// spanEnv is a hybrid Guard (JWTs verified locally behind the verified-token
// cache, opaque tokens introspected at iss.IntrospectionURL()) with rate
// limits ("limited" may make 2 requests), a JSON debug log, and an observer
// fanning out to a decision recorder and Tracing.
type spanEnv struct {
	iss       *jwkstest.Issuer
	guard     *middleware.Guard
	decisions *decisionRecorder
	logs      *testutil.Buffer
	spans     *tracetest.SpanRecorder
	handler   http.Handler
}

func newSpanEnv(t *testing.T) *spanEnv {
	t.Helper()
	spans, tp := newSpanRecorder(t)
	e := &spanEnv{
		iss:       jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock}),
		decisions: &decisionRecorder{},
		logs:      &testutil.Buffer{},
		spans:     spans,
	}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	jwt, err := core.NewJWT(core.JWTConfig{Issuer: e.iss.URL, Audience: e.iss.Audience, Now: fixedClock,
		JWKS: jwks.Config{Logger: logger}})
	require.NoError(t, err)
	intro, err := core.NewIntrospection(introspect.Config{Issuer: e.iss.URL, Audience: e.iss.Audience,
		Endpoint: e.iss.IntrospectionURL(), Now: fixedClock, Logger: logger})
	require.NoError(t, err)
	g, err := middleware.New(middleware.Config{
		Validator: core.Hybrid(core.ByIssuer(map[string]core.Validator{
			e.iss.URL: core.Cached(jwt, core.CacheConfig{Now: fixedClock}),
		}), intro),
		Observer: core.Observers(e.decisions, otelmetrics.NewTracing(tp)),
		RateLimit: &middleware.RateLimitConfig{Limits: ratelimit.Static{"limited": 2},
			Store: ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: fixedClock})},
		Logger: logger,
		Now:    fixedClock,
	})
	require.NoError(t, err)
	e.guard = g
	mux := http.NewServeMux()
	mux.Handle("/read", g.Protect(http.HandlerFunc(okHandler), scopes.All("data:read")))
	mux.Handle("/write", g.Protect(http.HandlerFunc(okHandler), scopes.All("data:write")))
	e.handler = mux
	return e
}

// attrs is a span's attributes by key, values as emitted.
func attrs(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, a := range s.Attributes() {
		m[string(a.Key)] = a.Value.Emit()
	}
	return m
}

// TestDecisionSpans runs middleware's 15-step observability script (no
// token, malformed header, M2M JWT, the same again, user JWT, expired,
// wrong audience, forged signature, missing scope, opaque, opaque again,
// revoked opaque, limited 1, 2, 3) through a Guard traced by Tracing.
func TestDecisionSpans(t *testing.T) {
	e := newSpanEnv(t)
	iss := e.iss
	m2m := iss.M2M("worker", "data:read")
	user := iss.User("user-42", "web-app", "alice@example.com", "data:read")
	opaque := iss.OpaqueM2M("batch", "data:read")
	revoked := iss.OpaqueM2M("batch", "data:read")
	iss.Revoke(revoked)
	limited := iss.M2M("limited", "data:read")
	forged := m2m[:len(m2m)-8] + "AAAAAAAA"

	accepted := func(kind core.Kind, method core.Method, client string, cached bool) core.Decision {
		return core.Decision{Outcome: core.OutcomeAccepted, Reason: aegis.ReasonAccepted,
			Kind: kind, Method: method, ClientID: client, Cached: cached}
	}
	refused := func(reason string, class aegis.Class) core.Decision {
		return core.Decision{Outcome: core.OutcomeRefused, Reason: aegis.Reason(reason), Class: class}
	}
	// validated is the verdict aegis.validate records for the step (before
	// scopes and rate limits): "" when the request is refused before its
	// token is validated, else "outcome/reason".
	script := []struct {
		name      string
		path      string
		auth      string
		status    int
		want      core.Decision
		validated string
	}{
		{"no token", "/read", "", 401, refused("token_missing", aegis.ClassInvalid), ""},
		{"malformed header", "/read", "Bearer a b", 400, refused("request_malformed", aegis.ClassInvalid), ""},
		{"M2M JWT", "/read", "Bearer " + m2m, 200, accepted(core.KindM2M, core.MethodJWT, "worker", false), "accepted/accepted"},
		{"same JWT again", "/read", "Bearer " + m2m, 200, accepted(core.KindM2M, core.MethodJWT, "worker", true), "accepted/accepted"},
		{"user JWT", "/read", "Bearer " + user, 200, accepted(core.KindUser, core.MethodJWT, "web-app", false), "accepted/accepted"},
		{"expired", "/read", "Bearer " + iss.Expired("worker", "data:read"), 401, refused("token_expired", aegis.ClassInvalid), "refused/token_expired"},
		{"wrong audience", "/read", "Bearer " + iss.WrongAudience("worker", "data:read"), 401, refused("audience_mismatch", aegis.ClassInvalid), "refused/audience_mismatch"},
		{"forged signature", "/read", "Bearer " + forged, 401, refused("signature_invalid", aegis.ClassInvalid), "refused/signature_invalid"},
		{"missing scope", "/write", "Bearer " + m2m, 403, core.Decision{Outcome: core.OutcomeRefused,
			Reason: "insufficient_scope", Class: aegis.ClassForbidden, Kind: core.KindM2M, Method: core.MethodJWT, ClientID: "worker"}, "accepted/accepted"},
		{"opaque", "/read", "Bearer " + opaque, 200, accepted(core.KindM2M, core.MethodIntrospection, "batch", false), "accepted/accepted"},
		{"opaque again", "/read", "Bearer " + opaque, 200, accepted(core.KindM2M, core.MethodIntrospection, "batch", false), "accepted/accepted"},
		{"revoked opaque", "/read", "Bearer " + revoked, 401, refused("token_inactive", aegis.ClassInvalid), "refused/token_inactive"},
		{"limited 1", "/read", "Bearer " + limited, 200, accepted(core.KindM2M, core.MethodJWT, "limited", false), "accepted/accepted"},
		{"limited 2", "/read", "Bearer " + limited, 200, accepted(core.KindM2M, core.MethodJWT, "limited", true), "accepted/accepted"},
		{"limited 3", "/read", "Bearer " + limited, 429, core.Decision{Outcome: core.OutcomeRefused,
			Reason: "rate_limited", Class: aegis.ClassLimited, Kind: core.KindM2M, Method: core.MethodJWT, ClientID: "limited"}, "accepted/accepted"},
	}
	for _, step := range script {
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, get(step.path, step.auth))
		require.Equal(t, step.status, rec.Code, step.name)
	}

	m := e.decisions
	m.mu.Lock()
	defer m.mu.Unlock()
	ended := e.spans.Ended()

	t.Run("decisions reach the observer beside tracing", func(t *testing.T) {
		require.Len(t, m.decisions, len(script))
		for i, step := range script {
			assert.Equal(t, step.want, m.decisions[i], step.name)
		}
	})

	t.Run("spans", func(t *testing.T) {
		counts := map[string]int{}
		validateIDs := map[string]bool{}
		for _, s := range ended {
			counts[s.Name()]++
			if s.Name() == "aegis.validate" {
				validateIDs[s.SpanContext().SpanID().String()] = true
			}
		}
		assert.Equal(t, map[string]int{
			"aegis.validate":         len(script) - 2, // all but the two refused before validation
			"aegis.jwks.fetch":       1,
			"aegis.introspect":       2,
			"aegis.ratelimit.lookup": 9,
		}, counts)
		for _, s := range ended {
			if s.Name() == "aegis.jwks.fetch" || s.Name() == "aegis.introspect" {
				assert.True(t, validateIDs[s.Parent().SpanID().String()], "%s is a child of a validation span", s.Name())
			}
		}
	})

	t.Run("validation span attributes", func(t *testing.T) {
		var got []string
		for _, s := range ended {
			if s.Name() == "aegis.validate" {
				a := attrs(s)
				got = append(got, a["aegis.outcome"]+"/"+a["aegis.reason"])
				assert.Equal(t, codes.Unset, s.Status().Code, "an answer is no failure")
			}
		}
		var want []string
		for _, step := range script {
			if step.validated != "" {
				want = append(want, step.validated)
			}
		}
		assert.Equal(t, want, got, "one validation span per validated request, in order")
	})

	t.Run("dependency span attributes", func(t *testing.T) {
		var active []string
		for _, s := range ended {
			a := attrs(s)
			switch s.Name() {
			case "aegis.jwks.fetch":
				assert.Equal(t, map[string]string{"aegis.issuer": iss.URL, "url.full": iss.JWKSURL(), "aegis.keys": "1"}, a)
			case "aegis.introspect":
				assert.Equal(t, iss.URL, a["aegis.issuer"])
				active = append(active, a["aegis.active"])
			case "aegis.ratelimit.lookup":
				assert.Contains(t, []string{"true", "false"}, a["aegis.limit_found"])
			}
			if s.Name() != "aegis.validate" {
				assert.Equal(t, codes.Unset, s.Status().Code, s.Name())
			}
		}
		assert.Equal(t, []string{"true", "false"}, active, "opaque: active; revoked: inactive, still an answer")
	})

	t.Run("no token in any output", func(t *testing.T) {
		var out strings.Builder
		out.WriteString(e.logs.String())
		for _, s := range ended {
			out.WriteString(s.Name() + s.Status().Description)
			for _, a := range s.Attributes() {
				out.WriteString(string(a.Key) + a.Value.Emit())
			}
		}
		for _, d := range m.decisions {
			out.WriteString(string(d.Reason) + d.ClientID)
		}
		for _, tok := range []string{m2m, user, opaque, revoked, limited, forged} {
			sig := tok[strings.LastIndexByte(tok, '.')+1:]
			assert.NotContains(t, out.String(), sig)
		}
	})
}

// TestDependencyFailureSpans: when the key set and the introspection
// endpoint both fail, the fetch, the call and both validations they caused
// end failed.
func TestDependencyFailureSpans(t *testing.T) {
	e := newSpanEnv(t)
	e.iss.ServeJWKSWith(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	e.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	for _, token := range []string{e.iss.M2M("worker", "data:read"), e.iss.OpaqueM2M("batch", "data:read")} {
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, get("/read", "Bearer "+token))
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	}
	failed := 0
	var names []string
	for _, s := range e.spans.Ended() {
		if s.Status().Code.String() == "Error" {
			failed++
			names = append(names, s.Name())
		}
	}
	assert.Equal(t, 4, failed, "fetch, call and both validations")
	assert.ElementsMatch(t, []string{"aegis.jwks.fetch", "aegis.validate", "aegis.introspect", "aegis.validate"}, names)
}

// TestUserHooksComposeWithTracing: a user's own key-set and introspection
// hooks get back, in Done, the context their Start returned (so they can
// end their own spans), while Aegis's spans sit beneath theirs.
func TestUserHooksComposeWithTracing(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	spans, tp := newSpanRecorder(t)
	userTracer := tp.Tracer("user")
	start := func(name string) func(context.Context) context.Context {
		return func(ctx context.Context) context.Context {
			ctx, _ = userTracer.Start(ctx, name)
			return ctx
		}
	}
	var mu sync.Mutex
	ended := map[string]bool{}
	done := func(ctx context.Context) {
		span := trace.SpanFromContext(ctx)
		mu.Lock()
		defer mu.Unlock()
		if ro, ok := span.(sdktrace.ReadOnlySpan); ok {
			ended[ro.Name()] = true
		}
		span.End()
	}
	jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock,
		JWKS: jwks.Config{Logger: quiet(), Observer: metricstest.UserObserver{Start: start, Done: done}}})
	require.NoError(t, err)
	intro, err := core.NewIntrospection(introspect.Config{Endpoint: iss.IntrospectionURL(), Issuer: iss.URL, Audience: iss.Audience,
		Now: fixedClock, Logger: quiet(),
		Observer: metricstest.UserObserver{Start: start, Done: done}})
	require.NoError(t, err)
	g, err := middleware.New(middleware.Config{
		Validator: core.Hybrid(core.Cached(jwt, core.CacheConfig{Now: fixedClock}), intro),
		Now:       fixedClock, Logger: quiet(),
		Observer: otelmetrics.NewTracing(tp),
	})
	require.NoError(t, err)
	for _, token := range []string{iss.M2M("worker"), iss.OpaqueM2M("batch")} {
		_, err := g.Validate(context.Background(), token)
		require.NoError(t, err)
	}

	mu.Lock()
	assert.Equal(t, map[string]bool{"user.fetch": true, "user.call": true}, ended, "each user Done got its own Start's span")
	mu.Unlock()
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		byName[s.Name()] = s
	}
	for aegisSpan, user := range map[string]string{"aegis.jwks.fetch": "user.fetch", "aegis.introspect": "user.call"} {
		require.Contains(t, byName, aegisSpan)
		require.Contains(t, byName, user)
		assert.Equal(t, byName[user].SpanContext().SpanID(), byName[aegisSpan].Parent().SpanID(), "%s is a child of %s", aegisSpan, user)
	}
}

// TestTracingOnAChecker: Tracing alone on a core.Checker, through Validate.
// The validation span is a child of the caller's span, records the verdict,
// and is failed only when the verdict is that Aegis could not decide.
func TestTracingOnAChecker(t *testing.T) {
	tests := []struct {
		name      string
		jwksDown  bool
		token     func(iss *jwkstest.Issuer) string
		reason    aegis.Reason
		wantAttrs map[string]string
		status    codes.Code
		fetch     codes.Code
	}{
		{
			name:   "an accepted token",
			token:  func(iss *jwkstest.Issuer) string { return iss.M2M("worker") },
			reason: aegis.ReasonAccepted,
			wantAttrs: map[string]string{"aegis.outcome": "accepted", "aegis.reason": "accepted",
				"aegis.kind": "m2m", "aegis.auth_method": "jwt", "aegis.cached": "false"},
			status: codes.Unset,
			fetch:  codes.Unset,
		},
		{
			name:      "an invalid token is an answer, not a failure",
			token:     func(iss *jwkstest.Issuer) string { return iss.Expired("worker") },
			reason:    aegis.ReasonTokenExpired,
			wantAttrs: map[string]string{"aegis.outcome": "refused", "aegis.reason": "token_expired"},
			status:    codes.Unset,
			fetch:     codes.Unset,
		},
		{
			name:      "keys unavailable",
			jwksDown:  true,
			token:     func(iss *jwkstest.Issuer) string { return iss.M2M("worker") },
			reason:    aegis.ReasonKeysUnavailable,
			wantAttrs: map[string]string{"aegis.outcome": "refused", "aegis.reason": "keys_unavailable"},
			status:    codes.Error,
			fetch:     codes.Error,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
			if tc.jwksDown {
				iss.ServeJWKSWith(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
			}
			spans, tp := newSpanRecorder(t)
			jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock,
				JWKS: jwks.Config{Logger: quiet()}})
			require.NoError(t, err)
			checker, err := core.New(core.Config{Validator: jwt, Observer: otelmetrics.NewTracing(tp), Logger: quiet(), Now: fixedClock})
			require.NoError(t, err)

			token := tc.token(iss)
			ctx, parent := tp.Tracer("caller").Start(context.Background(), "caller")
			p, err := checker.Validate(ctx, token)
			parent.End()
			if tc.reason == aegis.ReasonAccepted {
				require.NoError(t, err)
				assert.Equal(t, "worker", p.ClientID)
			} else {
				var r *aegis.Refusal
				require.ErrorAs(t, err, &r)
				assert.Equal(t, tc.reason, r.Reason)
			}

			byName := map[string][]sdktrace.ReadOnlySpan{}
			for _, s := range spans.Ended() {
				byName[s.Name()] = append(byName[s.Name()], s)
			}
			require.Len(t, byName["aegis.validate"], 1, "one validation span")
			v := byName["aegis.validate"][0]
			assert.Equal(t, tc.wantAttrs, attrs(v))
			assert.Equal(t, parent.SpanContext().SpanID(), v.Parent().SpanID(), "a child of the caller's span")
			assert.Equal(t, tc.status, v.Status().Code)
			if tc.status == codes.Error {
				assert.Contains(t, v.Status().Description, string(tc.reason))
			}

			require.Len(t, byName["aegis.jwks.fetch"], 1, "the first validation fetches the key set")
			f := byName["aegis.jwks.fetch"][0]
			assert.Equal(t, v.SpanContext().SpanID(), f.Parent().SpanID(), "the fetch is a child of the validation")
			assert.Equal(t, tc.fetch, f.Status().Code)
			assert.Equal(t, iss.URL, attrs(f)["aegis.issuer"])
			assert.Equal(t, iss.JWKSURL(), attrs(f)["url.full"])

			for _, s := range spans.Ended() {
				for _, a := range s.Attributes() {
					assert.NotContains(t, a.Value.Emit(), token[strings.LastIndexByte(token, '.')+1:])
				}
				assert.NotContains(t, s.Status().Description, token[strings.LastIndexByte(token, '.')+1:])
			}
		})
	}
}

// TestTracingEndsOnlyWhatItStarted: a Done event whose context no Start of
// Tracing prepared (another observer's Start, or none) records nothing and
// does not panic.
func TestTracingEndsOnlyWhatItStarted(t *testing.T) {
	spans, tp := newSpanRecorder(t)
	tr := otelmetrics.NewTracing(tp)
	ctx := context.Background()
	events := []struct {
		name string
		fire func()
	}{
		{"ValidationDone", func() { tr.ValidationDone(ctx, core.Decision{Outcome: core.OutcomeAccepted}) }},
		{"KeySetFetch", func() { tr.KeySetFetch(ctx, core.KeySetFetch{}) }},
		{"IntrospectionCall", func() { tr.IntrospectionCall(ctx, core.IntrospectionCall{}) }},
		{"LimitLookup", func() { tr.LimitLookup(ctx, core.LimitLookup{}) }},
	}
	for _, ev := range events {
		t.Run(ev.name, func(t *testing.T) {
			assert.NotPanics(t, ev.fire)
			assert.Empty(t, spans.Ended())
			assert.Empty(t, spans.Started())
		})
	}

	t.Run("each Start is ended by its own Done", func(t *testing.T) {
		lctx := tr.LimitLookupStart(ctx, "worker")
		tr.LimitLookup(lctx, core.LimitLookup{ClientID: "worker", Found: true})
		ended := spans.Ended()
		require.Len(t, ended, 1)
		assert.Equal(t, "aegis.ratelimit.lookup", ended[0].Name())
		assert.Equal(t, []attribute.KeyValue{attribute.Bool("aegis.limit_found", true)}, ended[0].Attributes())
	})
}
