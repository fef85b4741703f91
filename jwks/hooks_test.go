package jwks_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

type ctxKey struct{}

// fetchRecorder records the hooks' calls.
type fetchRecorder struct {
	mu      sync.Mutex
	starts  int
	fetches []jwks.Fetch
	carried []any // the value FetchStart put in the context, as FetchDone saw it
}

func (f *fetchRecorder) hooks() jwks.Hooks {
	return jwks.Hooks{
		FetchStart: func(ctx context.Context) context.Context {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.starts++
			return context.WithValue(ctx, ctxKey{}, f.starts)
		},
		FetchDone: func(ctx context.Context, fe jwks.Fetch) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.fetches = append(f.fetches, fe)
			f.carried = append(f.carried, ctx.Value(ctxKey{}))
		},
	}
}

func TestHooksSeeEveryFetch(t *testing.T) {
	good, other := jwkstest.NewKey("RS256"), jwkstest.NewKey("ES256")
	srv := newKeyServer(t, good, other)
	rec := &fetchRecorder{}
	clk := newClock()
	remote, err := jwks.NewRemote(jwks.Config{URL: srv.URL, Now: clk.Now, Hooks: rec.hooks()})
	require.NoError(t, err)

	require.NoError(t, remote.Refresh(context.Background()))
	srv.set(func(s *keyServer) { s.status = http.StatusInternalServerError })
	require.Error(t, remote.Refresh(context.Background()))

	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, 2, rec.starts)
	require.Len(t, rec.fetches, 2)
	tests := []struct {
		name    string
		fetch   jwks.Fetch
		keys    int
		failed  bool
		carried any
	}{
		{"success", rec.fetches[0], 2, false, 1},
		{"failure", rec.fetches[1], 0, true, 2},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, srv.URL, tt.fetch.URL)
			assert.Equal(t, tt.keys, tt.fetch.Keys)
			assert.Equal(t, tt.failed, tt.fetch.Err != nil)
			assert.Positive(t, tt.fetch.Duration)
			assert.Equal(t, tt.carried, rec.carried[i], "FetchDone gets the context FetchStart returned")
		})
	}
	assert.Len(t, remote.Keys(), 2, "the failed fetch kept the last good keys")
}
