package introspect_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/introspect"
)

// Hardening, round 2, point 1: once the issuer has refused a token, no
// positive answer for it is served again, fresh or within grace, whether
// the endpoint then fails on its own or because junk tokens fill
// MaxConcurrent on a slow endpoint.
func TestHardening2_GraceNeverServesARevokedToken(t *testing.T) {
	const junkPrefix = "ory_at_junk"
	tests := []struct {
		name string
		// unavailable makes the next call for the token fail as unavailable;
		// it returns a function that undoes what it set up.
		unavailable func(t *testing.T, f *fixture) (undo func())
	}{
		{
			name: "the endpoint fails",
			unavailable: func(t *testing.T, f *fixture) func() {
				f.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
				return func() {}
			},
		},
		{
			// The endpoint answers nothing in time (200 ms here) while junk
			// tokens hold its one slot: unavailability caused from outside.
			name: "junk tokens fill MaxConcurrent on a slow endpoint",
			unavailable: func(t *testing.T, f *fixture) func() {
				arrived, release := make(chan struct{}, 1), make(chan struct{})
				f.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasPrefix(r.PostFormValue("token"), junkPrefix) {
						select {
						case arrived <- struct{}{}:
						default:
						}
					}
					select {
					case <-release:
					case <-r.Context().Done():
					}
					_, _ = io.WriteString(w, `{"active":false}`)
				}))
				done := make(chan error, 1)
				go func() {
					_, err := f.client.Introspect(context.Background(), junkPrefix+"_slow.x")
					done <- err
				}()
				<-arrived // the one slot is taken
				return func() {
					close(release)
					assert.Error(t, <-done, "the junk token is never accepted")
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *introspect.Config) {
				c.Cache.TTL = 10 * time.Second
				c.Cache.NegativeTTL = 5 * time.Second
				c.Cache.Grace = 10 * time.Minute
				c.MaxConcurrent = 1
				c.Timeout = 200 * time.Millisecond // bounds the wait for the slot
			})
			ctx := context.Background()
			token := f.iss.OpaqueM2M("worker", "data:read")
			_, err := f.client.Introspect(ctx, token)
			require.NoError(t, err, "accepted while active")

			f.iss.Revoke(token)
			f.clk.Advance(11 * time.Second)
			_, err = f.client.Introspect(ctx, token)
			require.ErrorIs(t, err, introspect.ErrInactive, "the issuer says inactive once the positive answer is stale")

			undo := tc.unavailable(t, f)
			f.clk.Advance(6 * time.Second) // past NegativeTTL, within Grace
			_, err = f.client.Introspect(ctx, token)
			undo()
			require.Error(t, err, "a token the issuer called inactive is never served from grace")
			assert.ErrorIs(t, err, introspect.ErrUnavailable)
			assert.NotContains(t, f.logs.String(), "grace window")
		})
	}
}
