package core_test

import (
	"context"
	"encoding/base64"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/ratelimit"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return t0 }

// joined returns the errors err joins (errors.Join), or err alone.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestNewJWTConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  core.JWTConfig
		want []string // each problem, by the field it names
	}{
		{name: "empty", cfg: core.JWTConfig{}, want: []string{"JWTConfig.Issuer", "JWTConfig.Audience"}},
		{name: "no issuer", cfg: core.JWTConfig{Audience: "a"}, want: []string{"JWTConfig.Issuer"}},
		{name: "no audience", cfg: core.JWTConfig{Issuer: "https://id.example.com"}, want: []string{"JWTConfig.Audience"}},
		{name: "audience and any audience contradict", cfg: core.JWTConfig{Issuer: "https://id.example.com", Audience: "a", AnyAudience: true},
			want: []string{"JWTConfig.Audience and AnyAudience contradict"}},
		{name: "negative token length", cfg: core.JWTConfig{Issuer: "https://id.example.com", Audience: "a", MaxTokenLength: -1},
			want: []string{"JWTConfig.MaxTokenLength -1 is negative"}},
		{name: "every problem at once", cfg: core.JWTConfig{AnyAudience: true, Audience: "a", MaxTokenLength: -5},
			want: []string{"JWTConfig.Issuer", "JWTConfig.Audience and AnyAudience contradict", "JWTConfig.MaxTokenLength -5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := core.NewJWT(tc.cfg)
			require.Error(t, err)
			assert.Nil(t, v)
			errs := joined(err)
			require.Len(t, errs, len(tc.want), err.Error())
			for i, want := range tc.want {
				assert.Contains(t, errs[i].Error(), want)
			}
		})
	}

	t.Run("any audience alone is fine", func(t *testing.T) {
		v, err := core.NewJWT(core.JWTConfig{Issuer: "https://id.example.com", AnyAudience: true})
		require.NoError(t, err)
		assert.NotNil(t, v)
	})
	t.Run("a remote key set's own problems", func(t *testing.T) {
		_, err := core.NewJWT(core.JWTConfig{Issuer: "http://id.example.com", Audience: "a"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "JWTConfig.JWKS")
	})
}

func TestInsecureHTTPNamesTheField(t *testing.T) {
	_, err := core.NewJWT(core.JWTConfig{Issuer: "http://hydra:4444", Audience: "https://api.example.com"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `JWTConfig.Issuer "http://hydra:4444" uses http on a host other than loopback: set JWTConfig.JWKS.AllowInsecureHTTP to permit it`)
	_, err = core.NewJWT(core.JWTConfig{Issuer: "http://hydra:4444", Audience: "https://api.example.com", JWKS: jwks.Config{AllowInsecureHTTP: true}})
	assert.NoError(t, err)
	_, err = core.NewIntrospection(introspect.Config{Issuer: "https://athena.example", Audience: "a", Endpoint: "http://hydra:4445/admin/oauth2/introspect"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "set introspect.Config.AllowInsecureHTTP to permit it")
}

func TestNewConfigErrors(t *testing.T) {
	valid := core.ValidatorFunc(func(context.Context, string) (*core.Principal, error) { return nil, nil })
	tests := []struct {
		name string
		cfg  core.Config
		want []string
	}{
		{name: "no validator", cfg: core.Config{}, want: []string{"Config.Validator is required"}},
		{name: "negative token length", cfg: core.Config{Validator: valid, MaxTokenLength: -1}, want: []string{"Config.MaxTokenLength -1 is negative"}},
		{name: "negative default limit", cfg: core.Config{Validator: valid, RateLimit: &core.RateLimitConfig{Default: -1}},
			want: []string{"Config.RateLimit.Default"}},
		{name: "every problem at once", cfg: core.Config{MaxTokenLength: -2, RateLimit: &core.RateLimitConfig{Default: -1, Burst: -1}},
			want: []string{"Config.Validator is required", "Config.MaxTokenLength -2 is negative", "Config.RateLimit.Default", "Config.RateLimit.Burst"}},
		{name: "Hybrid with nil parts", cfg: core.Config{Validator: core.Hybrid(nil, nil)},
			want: []string{"Config.Validator: Hybrid's jwt is nil", "Config.Validator: Hybrid's opaque is nil"}},
		{name: "ByIssuer empty", cfg: core.Config{Validator: core.ByIssuer(nil)}, want: []string{"Config.Validator: ByIssuer has no issuer"}},
		{name: "ByIssuer with a nil validator and an empty issuer", cfg: core.Config{Validator: core.ByIssuer(map[string]core.Validator{
			"https://a.example": nil, "": valid})},
			want: []string{`Config.Validator: ByIssuer["https://a.example"] is nil`, "Config.Validator: ByIssuer has an empty issuer"}},
		{name: "a NewJWT error ignored", cfg: core.Config{Validator: core.Cached((*core.JWT)(nil), core.CacheConfig{})},
			want: []string{"Config.Validator: Cached's validator is a nil *JWT"}},
		{name: "nested", cfg: core.Config{Validator: core.Hybrid(core.ByIssuer(map[string]core.Validator{"https://a.example": (*core.Introspection)(nil)}), valid)},
			want: []string{`Config.Validator: Hybrid's jwt: ByIssuer["https://a.example"] is a nil *Introspection`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := core.New(tc.cfg)
			require.Error(t, err)
			assert.Nil(t, c)
			for _, want := range tc.want {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
	c, err := core.New(core.Config{Validator: valid})
	require.NoError(t, err)
	assert.NotNil(t, c)
}

// recording is a validator that counts its calls and admits every token.
type recording struct {
	name  string
	calls atomic.Int64
}

func (r *recording) Validate(context.Context, string) (*core.Principal, error) {
	r.calls.Add(1)
	return core.NewPrincipal(core.Principal{Subject: r.name, ClientID: r.name}, nil), nil
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestHybridRouting(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	tests := []struct {
		name        string
		token       string
		want        string // validator that answers; "" for a refusal
		reason      aegis.Reason
		jwt, opaque int64
	}{
		{name: "opaque token goes to opaque", token: iss.OpaqueM2M("w"), want: "opaque", opaque: 1},
		{name: "Hydra-style opaque token", token: "ory_at_abc.def", want: "opaque", opaque: 1},
		{name: "JWT goes to jwt", token: iss.M2M("w"), want: "jwt", jwt: 1},
		{name: "a JWT over 8 KiB is routed too: the Checker, not Hybrid, bounds the length",
			token: b64(`{"alg":"RS256","typ":"JWT"}`) + "." + b64(`{"iss":"x","pad":"`+strings.Repeat("a", 9000)+`"}`) + "." + b64("sig"), want: "jwt", jwt: 1},
		{name: "an opaque token over 8 KiB goes to opaque", token: "ory_at_" + strings.Repeat("a", 9000), want: "opaque", opaque: 1},
		{name: "malformed JWT-shaped token is refused without reaching opaque",
			token: b64(`{"alg":"RS256","typ":"JWT"}`) + "." + b64("not json") + "." + b64("sig"), reason: aegis.ReasonTokenMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jwt, opaque := &recording{name: "jwt"}, &recording{name: "opaque"}
			p, err := core.Hybrid(jwt, opaque).Validate(context.Background(), tc.token)
			if tc.want == "" {
				var r *aegis.Refusal
				require.ErrorAs(t, err, &r)
				assert.Equal(t, tc.reason, r.Reason)
				assert.Nil(t, p)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tc.want, p.Subject)
			}
			assert.Equal(t, tc.jwt, jwt.calls.Load(), "jwt calls")
			assert.Equal(t, tc.opaque, opaque.calls.Load(), "opaque calls")
		})
	}
}

func TestByIssuer(t *testing.T) {
	a := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	b := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	stranger := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	tests := []struct {
		name   string
		token  string
		want   string
		reason aegis.Reason
	}{
		{name: "A's JWT goes to A", token: a.M2M("w"), want: "a"},
		{name: "B's JWT goes to B", token: b.M2M("w"), want: "b"},
		{name: "a foreign issuer is refused", token: stranger.M2M("w"), reason: aegis.ReasonIssuerMismatch},
		{name: "an opaque token is malformed", token: a.OpaqueM2M("w"), reason: aegis.ReasonTokenMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			va, vb := &recording{name: "a"}, &recording{name: "b"}
			v := core.ByIssuer(map[string]core.Validator{a.URL: va, b.URL: vb})
			p, err := v.Validate(context.Background(), tc.token)
			if tc.want == "" {
				var r *aegis.Refusal
				require.ErrorAs(t, err, &r)
				assert.Equal(t, tc.reason, r.Reason)
				assert.Zero(t, va.calls.Load()+vb.calls.Load(), "no validator reached")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, p.Subject)
			assert.Equal(t, int64(1), va.calls.Load()+vb.calls.Load())
		})
	}

	t.Run("through a Checker", func(t *testing.T) {
		va := &recording{name: "a"}
		c, err := core.New(core.Config{Validator: core.ByIssuer(map[string]core.Validator{a.URL: va}), Logger: quiet()})
		require.NoError(t, err)
		v := c.Check(context.Background(), core.Credential{Token: stranger.M2M("w")})
		require.NotNil(t, v.Refusal)
		assert.Equal(t, aegis.ReasonIssuerMismatch, v.Refusal.Reason)
		assert.Equal(t, aegis.ClassInvalid, v.Refusal.Class)
		assert.Zero(t, va.calls.Load())
		assert.Zero(t, stranger.JWKSFetches())
	})
}

// events records what an Observer is told.
type events struct {
	core.NopObserver
	name string
	mu   sync.Mutex
	log  []string
	// seen is the value under ctxKey of the contexts its hooks got.
	seen []any
}

type ctxKey struct{}

func (e *events) add(ctx context.Context, what string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, what)
	e.seen = append(e.seen, ctx.Value(ctxKey{}))
}

func (e *events) ValidationStart(ctx context.Context) context.Context {
	e.add(ctx, "start")
	return context.WithValue(ctx, ctxKey{}, e.name)
}

func (e *events) ValidationDone(ctx context.Context, d core.Decision) {
	e.add(ctx, "done:"+string(d.Reason))
}

func (e *events) Decision(ctx context.Context, d core.Decision) {
	e.add(ctx, "decision:"+string(d.Reason))
}

func (e *events) RateLimit(ctx context.Context, d core.RateLimitDecision) {
	e.add(ctx, "ratelimit:"+d.ClientID)
}

func TestObserversFanOut(t *testing.T) {
	first, second := &events{name: "first"}, &events{name: "second"}
	obs := core.Observers(first, nil, second)

	t.Run("every event reaches each, start contexts chained", func(t *testing.T) {
		ctx := obs.ValidationStart(context.Background())
		assert.Equal(t, "second", ctx.Value(ctxKey{}), "the last Start's context is returned")
		obs.ValidationDone(ctx, core.Decision{Reason: aegis.ReasonAccepted})
		obs.Decision(ctx, core.Decision{Reason: aegis.ReasonAccepted})
		obs.RateLimit(ctx, core.RateLimitDecision{ClientID: "w"})
		obs.KeySetFetch(ctx, core.KeySetFetch{}) // NopObserver's, on both
		for _, e := range []*events{first, second} {
			assert.Equal(t, []string{"start", "done:accepted", "decision:accepted", "ratelimit:w"}, e.log, e.name)
		}
		assert.Equal(t, []any{nil, "second", "second", "second"}, first.seen)
		assert.Equal(t, []any{"first", "second", "second", "second"}, second.seen, "second's Start got first's context")
	})

	t.Run("one observer is itself, nested fan-outs flatten", func(t *testing.T) {
		assert.Same(t, first, core.Observers(nil, first))
		third := &events{name: "third"}
		nested := core.Observers(obs, third)
		nested.Decision(context.Background(), core.Decision{Reason: aegis.ReasonTokenMissing})
		for _, e := range []*events{first, second, third} {
			assert.Contains(t, e.log, "decision:token_missing", e.name)
		}
	})

	t.Run("a Checker reports to each", func(t *testing.T) {
		a, b := &events{name: "a"}, &events{name: "b"}
		c, err := core.New(core.Config{Validator: &recording{name: "w"}, Observer: core.Observers(a, b), Logger: quiet(),
			RateLimit: &core.RateLimitConfig{Default: 10, Store: ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: fixedClock})}})
		require.NoError(t, err)
		v := c.Check(context.Background(), core.Credential{Token: "opaque-token"})
		require.Nil(t, v.Refusal)
		for _, e := range []*events{a, b} {
			assert.Equal(t, []string{"start", "done:accepted", "ratelimit:w", "decision:accepted"}, e.log, e.name)
		}
	})
}

func TestCustomRefusalKeepsItsClass(t *testing.T) {
	tests := []struct {
		name    string
		refusal *aegis.Refusal
		class   aegis.Class
		retry   time.Duration
	}{
		{name: "limited", refusal: &aegis.Refusal{Reason: "slow_down", Class: aegis.ClassLimited, RetryAfter: 3 * time.Second},
			class: aegis.ClassLimited, retry: 3 * time.Second},
		{name: "limited without a hint gets one", refusal: &aegis.Refusal{Reason: aegis.ReasonRateLimited, Class: aegis.ClassLimited},
			class: aegis.ClassLimited, retry: 5 * time.Second},
		{name: "forbidden", refusal: &aegis.Refusal{Reason: "banned", Class: aegis.ClassForbidden}, class: aegis.ClassForbidden},
		{name: "no class takes its reason's", refusal: &aegis.Refusal{Reason: aegis.ReasonKeysUnavailable},
			class: aegis.ClassUnavailable, retry: 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &events{}
			v := core.ValidatorFunc(func(context.Context, string) (*core.Principal, error) { return nil, tc.refusal })
			c, err := core.New(core.Config{Validator: v, Observer: d, Logger: quiet()})
			require.NoError(t, err)
			got := c.Check(context.Background(), core.Credential{Token: "abc"})
			require.NotNil(t, got.Refusal)
			assert.Equal(t, tc.refusal.Reason, got.Refusal.Reason)
			assert.Equal(t, tc.class, got.Refusal.Class)
			assert.Equal(t, tc.retry, got.Refusal.RetryAfter)
			assert.Contains(t, d.log, "decision:"+string(tc.refusal.Reason))

			_, err = c.Validate(context.Background(), "abc")
			var r *aegis.Refusal
			require.ErrorAs(t, err, &r)
			assert.Equal(t, tc.class, r.Class)
		})
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestPrincipalIsOwnedAndCachedCopiesAreDistinct(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	k := iss.CurrentKey()
	set, err := jwks.NewSet(jwks.Key{ID: k.ID, Algorithm: k.Algorithm, Public: k.Public()})
	require.NoError(t, err)
	jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience, Keys: set, Now: fixedClock})
	require.NoError(t, err)
	v := core.Cached(jwt, core.CacheConfig{Now: fixedClock})

	c := iss.Claims("user-42", "web-app", "data:read")
	c["jti"] = "token-1"
	c["ext"] = map[string]any{"email": "alice@example.com"}
	token := iss.Sign(c)

	check := func(t *testing.T, p *core.Principal) {
		t.Helper()
		assert.Equal(t, "user-42", p.Subject)
		assert.Equal(t, "web-app", p.ClientID)
		assert.Equal(t, "alice@example.com", p.Email)
		assert.Equal(t, iss.URL, p.Issuer)
		assert.Equal(t, []string{iss.Audience}, p.Audience)
		assert.Equal(t, "token-1", p.TokenID)
		assert.Equal(t, t0.Add(time.Hour), p.Expiry)
		assert.Equal(t, []string{"data:read"}, p.Scopes.Strings())
		assert.Equal(t, core.MethodJWT, p.Method)
	}
	first, err := v.Validate(context.Background(), token)
	require.NoError(t, err)
	check(t, first)
	assert.False(t, first.Cached())

	second, err := v.Validate(context.Background(), token)
	require.NoError(t, err)
	check(t, second)
	assert.True(t, second.Cached())
	third, err := v.Validate(context.Background(), token)
	require.NoError(t, err)
	assert.NotSame(t, first, second)
	assert.NotSame(t, second, third, "each cache hit is a Principal of its own")

	// A caller changing its Principal changes no other.
	second.Subject, second.Email = "mallory", "mallory@example.com"
	third.Kind = core.KindM2M
	fourth, err := v.Validate(context.Background(), token)
	require.NoError(t, err)
	check(t, fourth)
	assert.Empty(t, fourth.Kind, "Kind is the Checker's to set")
	check(t, first)

	// Through a Checker, each hit is classified on its own copy.
	chk, err := core.New(core.Config{Validator: v, Logger: quiet()})
	require.NoError(t, err)
	p1, err := chk.Validate(context.Background(), token)
	require.NoError(t, err)
	p2, err := chk.Validate(context.Background(), token)
	require.NoError(t, err)
	assert.NotSame(t, p1, p2)
	assert.Equal(t, core.KindUser, p1.Kind)
	assert.True(t, p1.AdmittedBy(chk))
}

// TestKeySetWithoutUsableKeyWarns: a key set none of whose keys the allowed
// algorithms can use refuses every token, so each fetch of it is a warning
// naming the issuer and the algorithms (issue 14, point 1).
func TestKeySetWithoutUsableKeyWarns(t *testing.T) {
	tests := []struct {
		name       string
		issuerAlg  string
		algorithms []string
		warn       bool
	}{
		{"ES256 keys, RS256 allowed", "ES256", []string{"RS256"}, true},
		{"ES256 keys, the defaults", "ES256", nil, false},
		{"RS256 keys, RS256 allowed", "RS256", []string{"RS256"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: tt.issuerAlg})
			logs := &testutil.Buffer{}
			jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience, Algorithms: tt.algorithms,
				JWKS: jwks.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))}})
			require.NoError(t, err)
			// A token with an allowed alg makes the validator fetch the set.
			alg := "RS256"
			if tt.algorithms == nil {
				alg = tt.issuerAlg
			}
			k := jwkstest.NewKey(alg)
			_, _ = jwt.Validate(context.Background(), iss.SignWith(k, nil, iss.Claims("worker", "worker")))
			require.Positive(t, iss.JWKSFetches(), "the set was fetched")
			lines := logs.Lines("level=WARN", "no key for the allowed algorithms")
			if !tt.warn {
				assert.Empty(t, lines)
				return
			}
			require.Len(t, lines, 1)
			assert.Contains(t, lines[0], "issuer="+iss.URL)
			assert.Contains(t, lines[0], "RS256")
		})
	}
}
