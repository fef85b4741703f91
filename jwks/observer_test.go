package jwks_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/olympus/aegis"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

type ctxKey struct{}

// fetchRecorder is a jwks.Observer recording what it is told.
type fetchRecorder struct {
	mu      sync.Mutex
	starts  int
	issuers []string
	fetches []aegis.KeySetFetch
	carried []any // the value KeySetFetchStart put in the context, as KeySetFetch saw it
}

func (f *fetchRecorder) KeySetFetchStart(ctx context.Context, issuer string) context.Context {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts++
	f.issuers = append(f.issuers, issuer)
	return context.WithValue(ctx, ctxKey{}, f.starts)
}

func (f *fetchRecorder) KeySetFetch(ctx context.Context, fe aegis.KeySetFetch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches = append(f.fetches, fe)
	f.carried = append(f.carried, ctx.Value(ctxKey{}))
}

func TestObserverSeesEveryFetch(t *testing.T) {
	good, other := jwkstest.NewKey("RS256"), jwkstest.NewKey("ES256")
	srv := newKeyServer(t, good, other)
	rec := &fetchRecorder{}
	clk := newClock()
	remote, err := jwks.NewRemote(jwks.Config{URL: srv.URL, Issuer: "https://issuer.example", Now: clk.Now, Observer: rec})
	require.NoError(t, err)

	require.NoError(t, remote.Refresh(context.Background()))
	srv.set(func(s *keyServer) { s.status = http.StatusInternalServerError })
	require.Error(t, remote.Refresh(context.Background()))

	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, 2, rec.starts)
	assert.Equal(t, []string{"https://issuer.example", "https://issuer.example"}, rec.issuers)
	require.Len(t, rec.fetches, 2)
	tests := []struct {
		name    string
		fetch   aegis.KeySetFetch
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
			assert.Equal(t, "https://issuer.example", tt.fetch.Issuer)
			assert.Equal(t, tt.keys, tt.fetch.Keys)
			assert.Equal(t, tt.failed, tt.fetch.Err != nil)
			assert.Positive(t, tt.fetch.Duration)
			assert.Equal(t, tt.carried, rec.carried[i], "KeySetFetch gets the context KeySetFetchStart returned")
		})
	}
	assert.Len(t, remote.Keys(), 2, "the failed fetch kept the last good keys")
}
