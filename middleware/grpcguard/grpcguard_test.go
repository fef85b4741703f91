package grpcguard_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/grpcguard"
	"github.com/olympus/aegis/scopes"
)

// forged mints a token whose signature does not verify: signed with a key
// of its own under the issuer's current kid.
func forged(iss *jwkstest.Issuer) string {
	key := jwkstest.NewKey("RS256")
	return iss.SignWith(key, map[string]any{"kid": iss.CurrentKey().ID}, iss.Claims("mallory", "mallory", "data:read"))
}

func TestOutcomes(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	const invalid = `Bearer realm="api", error="invalid_token", error_description=`
	const malformed = `Bearer realm="api", error="invalid_request", error_description=`
	m2m := iss.M2M("nightly-sync", "data:read")
	tests := []struct {
		name string
		// auth are the authorization metadata values sent.
		auth []string
		// caller is what the handler sees when admitted.
		caller string
		code   codes.Code
		want   refusal
		// scope is the challenge's scope parameter by kind, on
		// insufficient_scope.
		scope map[kind]string
	}{
		{name: "m2m token", auth: []string{"Bearer " + m2m}, caller: "nightly-sync m2m data:read"},
		{name: "user token", auth: []string{"Bearer " + iss.User("alice", "web-app", "alice@example.com", "data:read", "data:stream")},
			caller: "alice user data:read data:stream"},
		{name: "scheme is case-insensitive", auth: []string{"bEaReR " + m2m}, caller: "nightly-sync m2m data:read"},
		{name: "no token", code: codes.Unauthenticated, want: refusal{Reason: "TOKEN_MISSING", Challenge: `Bearer realm="api"`}},
		{name: "other scheme", auth: []string{"Basic dXNlcjpwYXNz"}, code: codes.Unauthenticated,
			want: refusal{Reason: "TOKEN_MISSING", Challenge: `Bearer realm="api"`}},
		{name: "two authorization values", auth: []string{"Bearer " + m2m, "Bearer " + m2m}, code: codes.Unauthenticated,
			want: refusal{Reason: "REQUEST_MALFORMED", Challenge: malformed + `"The call has more than one authorization metadata value"`}},
		{name: "space in token", auth: []string{"Bearer " + m2m + " extra"}, code: codes.Unauthenticated,
			want: refusal{Reason: "REQUEST_MALFORMED", Challenge: malformed + `"The authorization metadata is malformed"`}},
		{name: "empty bearer", auth: []string{"Bearer "}, code: codes.Unauthenticated,
			want: refusal{Reason: "REQUEST_MALFORMED", Challenge: malformed + `"The Bearer credentials are empty"`}},
		{name: "not a JWT", auth: []string{"Bearer not-a-jwt"}, code: codes.Unauthenticated,
			want: refusal{Reason: "TOKEN_MALFORMED", Challenge: invalid + `"The access token is malformed"`}},
		{name: "expired", auth: []string{"Bearer " + iss.Expired("nightly-sync", "data:read")}, code: codes.Unauthenticated,
			want: refusal{Reason: "TOKEN_EXPIRED", Challenge: invalid + `"The access token expired"`}},
		{name: "forged signature", auth: []string{"Bearer " + forged(iss)}, code: codes.Unauthenticated,
			want: refusal{Reason: "SIGNATURE_INVALID", Challenge: invalid + `"The access token's signature is invalid"`}},
		{name: "wrong audience", auth: []string{"Bearer " + iss.WrongAudience("nightly-sync", "data:read")}, code: codes.Unauthenticated,
			want: refusal{Reason: "AUDIENCE_MISMATCH", Challenge: invalid + `"The access token is not meant for this API"`}},
		{name: "missing scope", auth: []string{"Bearer " + iss.M2M("report-writer", "data:write")}, code: codes.PermissionDenied,
			want:  refusal{Reason: "INSUFFICIENT_SCOPE", Challenge: `Bearer realm="api", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope=`},
			scope: map[kind]string{unary: `"data:read"`, stream: `"data:read data:stream"`}},
	}
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			obs := newDecisions()
			g, err := grpcguard.New(grpcguard.Config{Issuer: iss.URL, Audience: iss.Audience, Methods: methods(), Observer: obs})
			require.NoError(t, err)
			c := serve(t, tr, g)
			for _, k := range kinds {
				for _, tt := range tests {
					t.Run(string(k)+"/"+tt.name, func(t *testing.T) {
						res := call(t, c, k, tt.auth...)
						dec := obs.next(t)
						if tt.caller != "" {
							require.NoError(t, res.Err)
							assert.Equal(t, tt.caller, res.Caller)
							assert.Empty(t, challengeOf(t, res.Trailer))
							assert.Equal(t, core.OutcomeAccepted, dec.Outcome)
							return
						}
						require.Error(t, res.Err)
						st := status.Convert(res.Err)
						assert.Equal(t, tt.code, st.Code())
						assert.Equal(t, strings.ToLower(tt.want.Reason), string(dec.Reason), "the decision recorded")
						info, retry := details(t, st)
						require.NotNil(t, info)
						assert.Equal(t, tt.want.Reason, info.GetReason())
						assert.Equal(t, grpcguard.ErrorDomain, info.GetDomain())
						assert.Nil(t, retry)
						assert.Equal(t, tt.want.Challenge+tt.scope[k], challengeOf(t, res.Trailer))
						assert.True(t, strings.HasPrefix(st.Message(), "aegis: "+strings.ToLower(tt.want.Reason)), st.Message())
						for _, a := range tt.auth {
							if _, tok, ok := strings.Cut(a, " "); ok && len(tok) > 8 {
								assert.NotContains(t, st.Message(), tok)
								assert.NotContains(t, res.Trailer.Get("www-authenticate"), tok)
							}
						}
					})
				}
			}
		})
	}
}

// The gRPC challenges are the ones the HTTP middleware sends for the same
// request: the Bearer challenge, then the DPoP one (dpop.Allow).
func TestChallengeMatchesHTTP(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	httpGuard, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Realm: "orders"})
	require.NoError(t, err)
	g, err := grpcguard.New(grpcguard.Config{Checker: httpGuard.Checker(), Realm: "orders",
		Methods: map[string][]scopes.Requirement{unaryMethod: {scopes.All("data:read")}}})
	require.NoError(t, err)
	c := serve(t, overBufconn, g)
	h := httpGuard.Protect(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), scopes.All("data:read"))

	tests := []struct {
		name string
		auth []string
	}{
		{name: "no token"},
		{name: "two values", auth: []string{"Bearer a", "Bearer b"}},
		{name: "malformed", auth: []string{"Bearer a b"}},
		{name: "expired", auth: []string{"Bearer " + iss.Expired("w", "data:read")}},
		{name: "missing scope", auth: []string{"Bearer " + iss.M2M("w", "data:write")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "/", nil)
			require.NoError(t, err)
			for _, a := range tt.auth {
				req.Header.Add("Authorization", a)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			want := rec.Header().Values("WWW-Authenticate")
			require.NotEmpty(t, want)

			res := call(t, c, unary, tt.auth...)
			require.Error(t, res.Err)
			got := challengesOf(res.Trailer)
			for i := range want {
				// Only the subject of the description differs.
				want[i] = strings.Replace(want[i], "The request has more than one Authorization header", "The call has more than one authorization metadata value", 1)
				want[i] = strings.Replace(want[i], "The Authorization header is malformed", "The authorization metadata is malformed", 1)
			}
			assert.Equal(t, want, got)
		})
	}
}
