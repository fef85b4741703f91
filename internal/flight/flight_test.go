package flight_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/flight"
)

func TestDo(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		fn      func(context.Context) (string, error)
		want    string
		wantErr error
	}{
		{"value", func(context.Context) (string, error) { return "v", nil }, "v", nil},
		{"error", func(context.Context) (string, error) { return "", boom }, "", boom},
		{"panic becomes an error", func(context.Context) (string, error) { panic("oops") }, "", flight.ErrPanicked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g flight.Group[string]
			got, err := g.Do(context.Background(), "k", tt.fn)
			assert.Equal(t, tt.want, got)
			if tt.wantErr == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}

func TestDoSharesOneCall(t *testing.T) {
	var g flight.Group[int]
	var calls atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	results := make([]int, 8)
	for i := range results {
		wg.Go(func() {
			v, err := g.Do(context.Background(), "k", func(context.Context) (int, error) {
				calls.Add(1)
				once.Do(func() { close(started) })
				<-release
				return 42, nil
			})
			require.NoError(t, err)
			results[i] = v
		})
	}
	<-started
	// Every caller is either waiting on the call under way or has not
	// started yet; a late one may start a second call, which also returns.
	close(release)
	wg.Wait()
	for _, v := range results {
		assert.Equal(t, 42, v)
	}
	assert.LessOrEqual(t, calls.Load(), int32(len(results)))
	assert.GreaterOrEqual(t, calls.Load(), int32(1))
}

func TestDoCallerStopsWaitingWhenItsContextEnds(t *testing.T) {
	var g flight.Group[int]
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := g.Do(ctx, "k", func(context.Context) (int, error) {
		<-release
		return 1, nil
	})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestDoDetachesFromTheCallersCancellation(t *testing.T) {
	var g flight.Group[int]
	ctx, cancel := context.WithCancel(context.Background())
	inside := make(chan error, 1)
	_, _ = g.Do(ctx, "k", func(detached context.Context) (int, error) {
		cancel() // the caller gives up while the call is under way
		inside <- detached.Err()
		return 1, nil
	})
	assert.NoError(t, <-inside, "the shared call goes on for the other callers")
}
