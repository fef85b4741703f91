package introspect_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/olympus/aegis"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/introspect"
)

// TestHardening2_LineBreaksInOpaqueTokenRefusedBeforeCall (issue 13,
// point 2): the syntax check before any call refuses \r and \n wherever
// they are, so a spelling with line breaks never reaches the server (the
// b64token check already did on 23f49bf; this pins it).
func TestHardening2_LineBreaksInOpaqueTokenRefusedBeforeCall(t *testing.T) {
	f := newFixture(t, nil)
	token := f.iss.OpaqueM2M("worker", "data:read")
	_, err := f.client.Introspect(context.Background(), token)
	require.NoError(t, err, "the genuine token itself is active")
	calls := f.iss.IntrospectionCalls()
	for _, tc := range []struct{ name, token string }{
		{"LF inside", token[:8] + "\n" + token[8:]},
		{"CR inside", token[:8] + "\r" + token[8:]},
		{"CRLF at the end", token + "\r\n"},
		{"LF at the start", "\n" + token},
		{"2,000 LFs inside", token[:8] + strings.Repeat("\n", 2000) + token[8:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.client.Introspect(context.Background(), tc.token)
			assert.ErrorIs(t, err, introspect.ErrMalformed)
		})
	}
	assert.Equal(t, calls, f.iss.IntrospectionCalls(), "no spelling with line breaks caused a call")
}

// TestHardening2_NumericDateBeyondAnyRealDateRefused (issue 13, point 9): an
// active answer whose exp, nbf or iat is not finite or falls outside the
// years 1 to 9999 is refused as invalid claims (exp 1e300 used to be
// clamped to 9999 and served as never expiring).
func TestHardening2_NumericDateBeyondAnyRealDateRefused(t *testing.T) {
	exp := t0.Add(time.Hour).Unix()
	tests := []struct {
		name, members string
		want          error // nil: accepted
	}{
		{"exp 1e300", `,"exp":1e300`, introspect.ErrClaims},
		{"exp 1e309", `,"exp":1e309`, introspect.ErrClaims},
		{"exp in the year 10000", `,"exp":253402300800`, introspect.ErrClaims},
		{"exp -1e309", `,"exp":-1e309`, introspect.ErrClaims},
		{"nbf 1e309", fmt.Sprintf(`,"exp":%d,"nbf":1e309`, exp), introspect.ErrClaims},
		{"iat -1e300", fmt.Sprintf(`,"exp":%d,"iat":-1e300`, exp), introspect.ErrClaims},
		{"inactive answer with exp 1e300", `,"exp":1e300`, introspect.ErrInactive},
		{"exp within range", fmt.Sprintf(`,"exp":%d,"iat":-62135596800`, exp), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			active := "true"
			if tc.want == introspect.ErrInactive {
				active = "false"
			}
			f.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `{"active":`+active+`,"sub":"w","client_id":"w","aud":["https://api.test"]`+tc.members+`}`)
			}))
			f.iss.Audience = "https://api.test"
			res, err := f.client.Introspect(context.Background(), "ory_at_abc.def")
			if tc.want == nil {
				require.NoError(t, err)
				assert.Equal(t, "w", res.Subject)
				return
			}
			require.ErrorIs(t, err, tc.want)
			assert.Nil(t, res)
			var r *aegis.Refusal
			require.ErrorAs(t, err, &r)
			if tc.want == introspect.ErrClaims {
				assert.Equal(t, aegis.ReasonClaimsInvalid, r.Reason)
				assert.NotErrorIs(t, err, introspect.ErrUnavailable, "the answer was had: the claims are bad, not the server")
			}
		})
	}
}

// TestHardening2_CredentialsInURLsRedacted (issue 13, point 6): the
// endpoint's user info and query values never reach a log line or an error
// text (issuerhttp.Redact), whether the call fails by status, by refused
// credentials or by transport.
func TestHardening2_CredentialsInURLsRedacted(t *testing.T) {
	secrets := []string{"S3cret", "Q5ecret", "svc"}
	tests := []struct {
		name   string
		status int // 0: the server is unreachable
		want   string
	}{
		{"server error", http.StatusInternalServerError, "status 500"},
		{"our credentials refused (logged with the endpoint)", http.StatusUnauthorized, "client credentials"},
		{"server unreachable", 0, "POST"},
	}
	for _, tc := range tests {
		for _, userinfo := range []string{"svc:S3cret@", ""} {
			t.Run(tc.name+" "+userinfo, func(t *testing.T) {
				var endpoint string
				f := newFixture(t, func(c *introspect.Config) {
					u, err := url.Parse(c.Endpoint)
					require.NoError(t, err)
					if tc.status == 0 {
						u.Host = closedAddr(t)
					}
					endpoint = "http://" + userinfo + u.Host + u.Path + "?api_key=Q5ecret"
					c.Endpoint = endpoint
				})
				f.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(tc.status)
				}))
				_, err := f.client.Introspect(context.Background(), "ory_at_abc.def")
				require.ErrorIs(t, err, introspect.ErrUnavailable)
				assert.Contains(t, err.Error(), tc.want)
				var r *aegis.Refusal
				require.ErrorAs(t, err, &r)
				if tc.status == http.StatusUnauthorized {
					assert.Contains(t, f.logs.String(), "api_key=xxxxx", "the log names the redacted endpoint")
				}
				for _, secret := range secrets {
					assert.NotContains(t, f.logs.String(), secret, "log output")
					assert.NotContains(t, err.Error(), secret, "error text")
					assert.NotContains(t, r.Err.Error(), secret, "refusal's cause")
				}
			})
		}
	}
}

// closedAddr is the address of a server that no longer listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	return addr
}
