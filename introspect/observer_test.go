package introspect_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/olympus/aegis"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/introspect"
)

type ctxKey struct{}

// hookRecorder is an introspect.Observer recording what it is told.
type hookRecorder struct {
	mu      sync.Mutex
	lookups []bool
	issuers []string
	calls   []aegis.IntrospectionCall
	carried []any
	shared  []aegis.IntrospectionSharedCache
}

func (h *hookRecorder) IntrospectionSharedCache(_ context.Context, s aegis.IntrospectionSharedCache) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.shared = append(h.shared, s)
}

func (h *hookRecorder) IntrospectionCache(_ context.Context, l aegis.IntrospectionCacheLookup) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lookups = append(h.lookups, l.Hit)
	h.issuers = append(h.issuers, l.Issuer)
}

func (h *hookRecorder) IntrospectionCallStart(ctx context.Context, issuer string) context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.issuers = append(h.issuers, issuer)
	return context.WithValue(ctx, ctxKey{}, "started")
}

func (h *hookRecorder) IntrospectionCall(ctx context.Context, c aegis.IntrospectionCall) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, c)
	h.carried = append(h.carried, ctx.Value(ctxKey{}))
}

func TestObserverSeesLookupsAndCalls(t *testing.T) {
	rec := &hookRecorder{}
	f := newFixture(t, func(c *introspect.Config) { c.Observer = rec })
	ctx := context.Background()
	active := f.iss.OpaqueM2M("worker", "data:read")
	revoked := f.iss.OpaqueM2M("worker", "data:read")
	f.iss.Revoke(revoked)

	_, err := f.client.Introspect(ctx, active) // miss, call: active
	require.NoError(t, err)
	_, err = f.client.Introspect(ctx, active) // hit
	require.NoError(t, err)
	_, err = f.client.Introspect(ctx, revoked) // miss, call: inactive
	require.ErrorIs(t, err, introspect.ErrInactive)
	_, err = f.client.Introspect(ctx, revoked) // negative hit
	require.ErrorIs(t, err, introspect.ErrInactive)
	_, err = f.client.Introspect(ctx, "not a token") // syntax: no lookup
	require.ErrorIs(t, err, introspect.ErrMalformed)
	f.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	_, err = f.client.Introspect(ctx, f.iss.OpaqueM2M("worker")) // miss, call: unavailable
	require.ErrorIs(t, err, introspect.ErrUnavailable)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, []bool{false, true, false, true, false}, rec.lookups)
	for _, iss := range rec.issuers {
		assert.Equal(t, f.iss.URL, iss, "every event names the client's issuer")
	}
	require.Len(t, rec.calls, 3)
	tests := []struct {
		name        string
		call        aegis.IntrospectionCall
		active      bool
		unavailable bool
	}{
		{"active", rec.calls[0], true, false},
		{"inactive", rec.calls[1], false, false},
		{"server error", rec.calls[2], false, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.active, tt.call.Active)
			assert.Equal(t, tt.unavailable, tt.call.Err != nil)
			if tt.unavailable {
				assert.ErrorIs(t, tt.call.Err, introspect.ErrUnavailable)
			}
			assert.Positive(t, tt.call.Duration)
			assert.Equal(t, f.iss.URL, tt.call.Issuer)
			assert.Equal(t, "started", rec.carried[i])
		})
	}
}
