package ratelimit_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/ratelimit"
)

func TestNewStatic(t *testing.T) {
	tests := []struct {
		name    string
		limits  map[string]int
		wantErr string
	}{
		{name: "valid", limits: map[string]int{"a": 600, "b": 1, "c": 60_000_000}},
		{name: "zero allowed", limits: map[string]int{"paused": 0}},
		{name: "empty", limits: map[string]int{}},
		{name: "nil", limits: nil},
		{name: "negative", limits: map[string]int{"a": 600, "b": -1}, wantErr: `"b" is negative`},
		{name: "too large", limits: map[string]int{"a": 60_000_001}, wantErr: `"a" is over 60000000`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ratelimit.NewStatic(tt.limits)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Nil(t, s)
				return
			}
			require.NoError(t, err)
			assert.Len(t, s, len(tt.limits))
		})
	}
}

func TestStaticLookup(t *testing.T) {
	limits := map[string]int{"data-sync": 600, "paused": 0, "": 5}
	s, err := ratelimit.NewStatic(limits)
	require.NoError(t, err)
	limits["data-sync"] = 1 // NewStatic copied the map

	tests := []struct {
		name   string
		src    ratelimit.Static
		id     string
		want   int
		wantOK bool
	}{
		{name: "present", src: s, id: "data-sync", want: 600, wantOK: true},
		{name: "zero is no value", src: s, id: "paused"},
		{name: "missing", src: s, id: "stranger"},
		{name: "empty id", src: s, id: ""},
		{name: "nil map", src: nil, id: "data-sync"},
		{name: "literal negative", src: ratelimit.Static{"x": -3}, id: "x"},
		{name: "literal too large", src: ratelimit.Static{"x": 60_000_001}, id: "x"},
		{name: "literal valid", src: ratelimit.Static{"x": 3}, id: "x", want: 3, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok, err := tt.src.Lookup(context.Background(), ratelimit.Client{ID: tt.id})
			require.NoError(t, err)
			assert.Equal(t, tt.want, n)
			assert.Equal(t, tt.wantOK, ok)
		})
	}
}

// claimsOf returns a Client.Claim over raw JSON claims.
func claimsOf(claims map[string]string) func(string) (json.RawMessage, bool) {
	return func(name string) (json.RawMessage, bool) {
		v, ok := claims[name]
		if !ok {
			return nil, false
		}
		return json.RawMessage(v), true
	}
}

func TestClaimSource(t *testing.T) {
	tests := []struct {
		name   string
		claim  string // ClaimSource.Name
		claims map[string]string
		nilFn  bool
		want   int
		wantOK bool
		logged bool
	}{
		{name: "top level", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": "600"}, want: 600, wantOK: true},
		{name: "top level spaces", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": " 600 "}, want: 600, wantOK: true},
		{name: "ext", claim: "ext.rate_limit_per_minute", claims: map[string]string{"ext": `{"email":"a@b.c","rate_limit_per_minute":120}`}, want: 120, wantOK: true},
		{name: "deeper name is one member", claim: "ext.a.b", claims: map[string]string{"ext": `{"a.b":9,"a":{"b":1}}`}, want: 9, wantOK: true},
		{name: "dotted name is a path", claim: "ext.rate_limit_per_minute", claims: map[string]string{"ext.rate_limit_per_minute": "600", "ext": `{}`}},
		{name: "top level absent", claim: "rate_limit_per_minute", claims: map[string]string{"sub": `"c"`}},
		{name: "top level zero", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": "0"}},
		{name: "minus zero", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": "-0"}},
		{name: "top level null", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": "null"}},
		{name: "ext absent", claim: "ext.rate_limit_per_minute", claims: map[string]string{"sub": `"c"`}},
		{name: "ext null", claim: "ext.rate_limit_per_minute", claims: map[string]string{"ext": `null`}},
		{name: "ext empty", claim: "ext.rate_limit_per_minute", claims: map[string]string{"ext": `{}`}},
		{name: "no claims", claim: "rate_limit_per_minute", nilFn: true},
		{name: "empty name", claim: "", claims: map[string]string{"": "5"}},
		{name: "empty member", claim: "ext.", claims: map[string]string{"ext": `{"":5}`}},
		{name: "empty claim", claim: ".x", claims: map[string]string{"": `{"x":5}`}},
		{name: "negative", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": "-5"}, logged: true},
		{name: "fractional", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": "10.5"}, logged: true},
		{name: "negative fractional", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": "-0.5"}, logged: true},
		{name: "string", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": `"600"`}, logged: true},
		{name: "boolean", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": "false"}, logged: true},
		{name: "object", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": "{}"}, logged: true},
		{name: "too large", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": "1e12"}, logged: true},
		{name: "leading zero", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": "0600"}, logged: true},
		{name: "not JSON", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": "six hundred"}, logged: true},
		{name: "not a number", claim: "rate_limit_per_minute", claims: map[string]string{"rate_limit_per_minute": "1e"}, logged: true},
		{name: "ext bad value", claim: "ext.rate_limit_per_minute", claims: map[string]string{"ext": `{"rate_limit_per_minute":10.5}`}, logged: true},
		{name: "ext not an object", claim: "ext.rate_limit_per_minute", claims: map[string]string{"ext": `"x"`}, logged: true},
		{name: "ext duplicate member", claim: "ext.rate_limit_per_minute", claims: map[string]string{"ext": `{"rate_limit_per_minute":1,"rate_limit_per_minute":9}`}, logged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, log := newSrcLogger()
			src := &ratelimit.ClaimSource{Name: tt.claim, Logger: logger}
			c := ratelimit.Client{ID: "client-1"}
			if !tt.nilFn {
				c.Claim = claimsOf(tt.claims)
			}
			for range 3 {
				n, ok, err := src.Lookup(context.Background(), c)
				require.NoError(t, err)
				assert.Equal(t, tt.want, n)
				assert.Equal(t, tt.wantOK, ok)
			}
			lines := log.Lines("level=WARN")
			if !tt.logged {
				assert.Empty(t, lines)
				return
			}
			require.Len(t, lines, 1)
			assert.Contains(t, lines[0], "client_id=client-1")
			assert.Contains(t, lines[0], "source=claim")
			assert.Contains(t, lines[0], "reason=")
		})
	}
}

func TestClaimSourceConcurrent(t *testing.T) {
	logger, log := newSrcLogger()
	src := &ratelimit.ClaimSource{Name: "ext.rate_limit_per_minute", Logger: logger}
	bad := ratelimit.Client{ID: "bad", Claim: claimsOf(map[string]string{"ext": `{"rate_limit_per_minute":"600"}`})}
	good := ratelimit.Client{ID: "good", Claim: claimsOf(map[string]string{"ext": `{"rate_limit_per_minute":600}`})}
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for range 50 {
		wg.Go(func() {
			if _, ok, _ := src.Lookup(context.Background(), bad); ok {
				wrong.Add(1)
			}
			if n, _, _ := src.Lookup(context.Background(), good); n != 600 {
				wrong.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Zero(t, wrong.Load())
	assert.Len(t, log.Lines("level=WARN"), 1)
}

// srcFake is a Source with canned answers that counts its calls.
type srcFake struct {
	n     int
	ok    bool
	err   error
	calls atomic.Int64
}

func (f *srcFake) Lookup(ctx context.Context, _ ratelimit.Client) (int, bool, error) {
	f.calls.Add(1)
	if f.err != nil {
		return 0, false, f.err
	}
	return f.n, f.ok, nil
}

var errSrcDown = errors.New("source down")

func TestChain(t *testing.T) {
	tests := []struct {
		name      string
		sources   []*srcFake
		withNil   bool
		def       int
		want      int
		wantOK    bool
		wantCalls []int64
	}{
		{name: "first wins", sources: []*srcFake{{n: 10, ok: true}, {n: 20, ok: true}}, want: 10, wantOK: true, wantCalls: []int64{1, 0}},
		{name: "absent falls through", sources: []*srcFake{{}, {n: 20, ok: true}}, want: 20, wantOK: true, wantCalls: []int64{1, 1}},
		{name: "error falls through", sources: []*srcFake{{err: errSrcDown}, {n: 30, ok: true}}, def: 5, want: 30, wantOK: true, wantCalls: []int64{1, 1}},
		{name: "none: default", sources: []*srcFake{{}, {}}, def: 60, want: 60, wantOK: true, wantCalls: []int64{1, 1}},
		{name: "none: unlimited", sources: []*srcFake{{}, {}}, def: 0, want: 0, wantOK: false, wantCalls: []int64{1, 1}},
		{name: "all failing: default", sources: []*srcFake{{err: errSrcDown}, {err: errSrcDown}}, def: 5, want: 5, wantOK: true, wantCalls: []int64{1, 1}},
		{name: "all failing: unlimited", sources: []*srcFake{{err: errSrcDown}}, want: 0, wantOK: false, wantCalls: []int64{1}},
		{name: "ok with zero skipped", sources: []*srcFake{{n: 0, ok: true}, {n: 7, ok: true}}, want: 7, wantOK: true, wantCalls: []int64{1, 1}},
		{name: "ok with negative skipped", sources: []*srcFake{{n: -4, ok: true}}, def: 9, want: 9, wantOK: true, wantCalls: []int64{1}},
		{name: "ok over maximum skipped", sources: []*srcFake{{n: 60_000_001, ok: true}}, def: 9, want: 9, wantOK: true, wantCalls: []int64{1}},
		{name: "nil source skipped", sources: []*srcFake{{n: 3, ok: true}}, withNil: true, want: 3, wantOK: true, wantCalls: []int64{1}},
		{name: "no sources", def: 8, want: 8, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sources []ratelimit.Source
			if tt.withNil {
				sources = append(sources, nil)
			}
			for _, s := range tt.sources {
				sources = append(sources, s)
			}
			chain := ratelimit.NewChain(tt.def, sources...)
			chain.Logger = slog.New(slog.DiscardHandler)
			n, ok, err := chain.Lookup(context.Background(), ratelimit.Client{ID: "c"})
			require.NoError(t, err)
			assert.Equal(t, tt.want, n)
			assert.Equal(t, tt.wantOK, ok)
			for i, s := range tt.sources {
				assert.Equal(t, tt.wantCalls[i], s.calls.Load(), "source %d", i)
			}
		})
	}
}

func TestChainLiteralDefaults(t *testing.T) {
	tests := []struct {
		def    int
		want   int
		wantOK bool
	}{
		{def: -1, want: 0, wantOK: false},
		{def: 0, want: 0, wantOK: false},
		{def: 90, want: 90, wantOK: true},
		{def: 70_000_000, want: 60_000_000, wantOK: true},
	}
	for _, tt := range tests {
		chain := &ratelimit.Chain{Default: tt.def}
		n, ok, err := chain.Lookup(context.Background(), ratelimit.Client{ID: "c"})
		require.NoError(t, err)
		assert.Equal(t, tt.want, n, "default %d", tt.def)
		assert.Equal(t, tt.wantOK, ok, "default %d", tt.def)
	}
}

func TestNewChainRefusesBadDefault(t *testing.T) {
	for _, def := range []int{-1, 60_000_001} {
		assert.Panics(t, func() { ratelimit.NewChain(def) }, "default %d", def)
	}
	assert.NotPanics(t, func() { ratelimit.NewChain(60_000_000) })
}

func TestChainLogsOncePerOutage(t *testing.T) {
	logger, log := newSrcLogger()
	clock := newSrcClock()
	down := &srcFake{err: errSrcDown}
	other := &srcFake{err: errors.New("other down")}
	chain := ratelimit.NewChain(60, down, other)
	chain.Logger, chain.Now = logger, clock.Now

	steps := []struct {
		advance   time.Duration
		recover   bool
		wantLines int
	}{
		{wantLines: 2}, // both sources start failing
		{advance: time.Second, wantLines: 2},
		{advance: 50 * time.Second, wantLines: 2},
		{advance: 50 * time.Second, wantLines: 2}, // failures less than a minute apart: one outage
		{advance: time.Second, recover: true, wantLines: 2},
		{advance: 2 * time.Minute, wantLines: 4}, // a new outage of each
		{advance: time.Second, wantLines: 4},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		if st.recover {
			down.err, other.err = nil, nil
		} else {
			down.err, other.err = errSrcDown, errors.New("other down")
		}
		n, ok, err := chain.Lookup(context.Background(), ratelimit.Client{ID: "c"})
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, 60, n)
		lines := log.Lines("level=WARN", "source failing")
		assert.Len(t, lines, st.wantLines, "step %d", i)
	}
	lines := log.Lines("level=WARN", "source_index=0")
	require.NotEmpty(t, lines)
	assert.Contains(t, lines[0], "source down")
	assert.Contains(t, lines[0], "client_id=c")
}

func TestChainCanceledContext(t *testing.T) {
	logger, log := newSrcLogger()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ctxSource := &srcFake{err: context.Canceled}
	next := &srcFake{n: 5, ok: true}
	chain := ratelimit.NewChain(60, ctxSource, next)
	chain.Logger = logger
	n, ok, err := chain.Lookup(ctx, ratelimit.Client{ID: "c"})
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, ok)
	assert.Zero(t, n)
	assert.Zero(t, next.calls.Load())
	assert.Empty(t, log.Lines())
}

func TestChainConcurrent(t *testing.T) {
	logger, log := newSrcLogger()
	chain := ratelimit.NewChain(60, &srcFake{err: errSrcDown}, ratelimit.Static{"a": 10})
	chain.Logger = logger
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for i := range 100 {
		wg.Go(func() {
			id, want := "a", 10
			if i%2 == 1 {
				id, want = "b", 60
			}
			if n, _, err := chain.Lookup(context.Background(), ratelimit.Client{ID: id}); err != nil || n != want {
				wrong.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Zero(t, wrong.Load())
	assert.Len(t, log.Lines("level=WARN"), 1)
}
