package grpcguard_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/grpcguard"
	"github.com/olympus/aegis/scopes"
)

// A method listed nowhere is refused before its token is looked at,
// unless AllowUnlisted admits any valid token.
func TestUnlisted(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	token := "Bearer " + iss.M2M("nightly-sync", "data:read")
	tests := []struct {
		name          string
		allowUnlisted bool
		auth          []string
		code          codes.Code
		reason        string
		caller        string
	}{
		{name: "refused with a valid token", auth: []string{token}, code: codes.PermissionDenied, reason: "INSUFFICIENT_SCOPE"},
		{name: "refused without a token", code: codes.PermissionDenied, reason: "INSUFFICIENT_SCOPE"},
		{name: "refused with a bad token", auth: []string{"Bearer junk"}, code: codes.PermissionDenied, reason: "INSUFFICIENT_SCOPE"},
		{name: "opted in: valid token", allowUnlisted: true, auth: []string{token}, caller: "nightly-sync m2m data:read"},
		{name: "opted in: no token", allowUnlisted: true, code: codes.Unauthenticated, reason: "TOKEN_MISSING"},
		{name: "opted in: expired", allowUnlisted: true, auth: []string{"Bearer " + iss.Expired("nightly-sync")},
			code: codes.Unauthenticated, reason: "TOKEN_EXPIRED"},
	}
	for _, tr := range transports {
		for _, k := range kinds {
			for _, tt := range tests {
				t.Run(string(tr)+"/"+string(k)+"/"+tt.name, func(t *testing.T) {
					obs := newDecisions()
					g, err := grpcguard.New(grpcguard.Config{Issuer: iss.URL, Audience: iss.Audience, Observer: obs,
						AllowUnlisted: tt.allowUnlisted})
					require.NoError(t, err)
					res := call(t, serve(t, tr, g), k, tt.auth...)
					dec := obs.next(t)
					if tt.caller != "" {
						require.NoError(t, res.Err)
						assert.Equal(t, tt.caller, res.Caller)
						assert.Equal(t, core.OutcomeAccepted, dec.Outcome)
						return
					}
					st := status.Convert(res.Err)
					assert.Equal(t, tt.code, st.Code())
					info, _ := details(t, st)
					require.NotNil(t, info)
					assert.Equal(t, tt.reason, info.GetReason())
					assert.Equal(t, core.OutcomeRefused, dec.Outcome)
					if tt.code == codes.PermissionDenied {
						assert.Equal(t, "aegis: insufficient_scope: No access token grants this method", st.Message())
						assert.Equal(t, `Bearer realm="api", error="insufficient_scope", error_description="No access token grants this method"`,
							challengeOf(t, res.Trailer))
						assert.Empty(t, dec.ClientID, "no token was validated")
					}
				})
			}
		}
	}
}

// A service's rule covers its methods not listed by name; public methods
// need no token and see no Principal.
func TestServiceRulesAndPublicMethods(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	g, err := grpcguard.New(grpcguard.Config{Issuer: iss.URL, Audience: iss.Audience,
		Methods: map[string][]scopes.Requirement{
			"/grpc.testing.TestService/*": {scopes.All("data:admin")},
			unaryMethod:                   {scopes.All("data:read")},
		},
		Public: []string{publicMethod},
	})
	require.NoError(t, err)
	reader := "Bearer " + iss.M2M("reader", "data:read")
	admin := "Bearer " + iss.M2M("admin", "data:admin")
	tests := []struct {
		name   string
		kind   kind
		auth   []string
		code   codes.Code
		caller string
	}{
		{name: "method rule admits", kind: unary, auth: []string{reader}, caller: "reader m2m data:read"},
		{name: "method rule wins over the service's", kind: unary, auth: []string{admin}, code: codes.PermissionDenied},
		{name: "service rule admits", kind: stream, auth: []string{admin}, caller: "admin m2m data:admin"},
		{name: "service rule refuses", kind: stream, auth: []string{reader}, code: codes.PermissionDenied},
		{name: "service rule needs a token", kind: stream, code: codes.Unauthenticated},
	}
	for _, tr := range transports {
		c := serve(t, tr, g)
		for _, tt := range tests {
			t.Run(string(tr)+"/"+tt.name, func(t *testing.T) {
				res := call(t, c, tt.kind, tt.auth...)
				if tt.caller != "" {
					require.NoError(t, res.Err)
					assert.Equal(t, tt.caller, res.Caller)
					return
				}
				assert.Equal(t, tt.code, status.Code(res.Err))
			})
		}
		for _, auth := range [][]string{nil, {reader}, {"Bearer junk"}, {"Bearer a", "Bearer b"}} {
			t.Run(string(tr)+"/public", func(t *testing.T) {
				resp, err := c.CacheableUnaryCall(authorization(t.Context(), auth...), &testgrpc.SimpleRequest{})
				require.NoError(t, err)
				assert.Equal(t, "anonymous", resp.GetUsername(), "a public method's token is not looked at")
			})
		}
	}
}

// Interceptors outside the Guard find the *aegis.Refusal in the error's
// chain; the client gets only the status.
func TestRefusalInErrorChain(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	g, err := grpcguard.New(grpcguard.Config{Issuer: iss.URL, Audience: iss.Audience, Methods: methods()})
	require.NoError(t, err)
	seen := make(chan error, 1)
	outer := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(ctx, req)
		seen <- err
		return resp, err
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(outer, g.Unary()))
	testgrpc.RegisterTestServiceServer(srv, service{})
	c := dial(t, srv)

	expired := iss.Expired("nightly-sync", "data:read")
	_, err = c.UnaryCall(authorization(t.Context(), "Bearer "+expired), &testgrpc.SimpleRequest{})
	require.Error(t, err)
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	var r *aegis.Refusal
	assert.False(t, errors.As(err, &r), "the client sees a status, not the refusal")

	inner := <-seen
	require.ErrorAs(t, inner, &r)
	assert.Equal(t, aegis.ReasonTokenExpired, r.Reason)
	assert.Equal(t, codes.Unauthenticated, status.Code(inner))
	assert.NotContains(t, inner.Error(), expired)
}

// Decisions are logged by the core, naming the method, never the token.
func TestDecisionLog(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	var logs syncBuffer
	g, err := grpcguard.New(grpcguard.Config{Issuer: iss.URL, Audience: iss.Audience, Methods: methods(),
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	c := serve(t, overBufconn, g)
	good, expired := iss.M2M("nightly-sync", "data:read"), iss.Expired("nightly-sync", "data:read")
	require.NoError(t, call(t, c, unary, "Bearer "+good).Err)
	require.Error(t, call(t, c, stream, "Bearer "+expired).Err)

	out := logs.String()
	assert.Contains(t, out, `"msg":"aegis: request accepted","outcome":"accepted","reason":"accepted","client_id":"nightly-sync","kind":"m2m","auth_method":"jwt","method":"POST","path":"/grpc.testing.TestService/UnaryCall"`)
	assert.Contains(t, out, `"msg":"aegis: request refused","outcome":"refused","reason":"token_expired","class":"invalid","method":"POST","path":"/grpc.testing.TestService/StreamingOutputCall"`)
	assert.NotContains(t, out, good)
	assert.NotContains(t, out, expired)
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestNewConfigErrors(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	httpChecker, err := core.New(core.Config{Validator: core.ValidatorFunc(func(context.Context, string) (*core.Principal, error) {
		return nil, errors.New("no")
	})})
	require.NoError(t, err)
	tests := []struct {
		name string
		cfg  grpcguard.Config
		want []string // fragments of the error
	}{
		{name: "nothing", cfg: grpcguard.Config{}, want: []string{"Config.Issuer is required", "Config.Audience is required"}},
		{name: "shorthand and validator", cfg: grpcguard.Config{Issuer: iss.URL, Audience: "a", Validator: core.ValidatorFunc(nil)},
			want: []string{"set them or Config.Validator, not both"}},
		{name: "checker and more", cfg: grpcguard.Config{Checker: httpChecker, RateLimit: &core.RateLimitConfig{}},
			want: []string{"Config.Checker decides alone"}},
		{name: "insecure issuer", cfg: grpcguard.Config{Issuer: "http://iam.example.com", Audience: "a"}, want: []string{"uses http"}},
		{name: "bad method names", cfg: grpcguard.Config{Checker: httpChecker, Methods: map[string][]scopes.Requirement{
			"pkg.Service/Method": nil, "/pkg.Service": nil, "/pkg.Service/a/b": nil}},
			want: []string{`"pkg.Service/Method" is not a full method name`, `"/pkg.Service" is not`, `"/pkg.Service/a/b" is not`}},
		{name: "zero requirement", cfg: grpcguard.Config{Checker: httpChecker, Methods: map[string][]scopes.Requirement{
			unaryMethod: {{}}}}, want: []string{"zero scopes.Requirement"}},
		{name: "public and listed", cfg: grpcguard.Config{Checker: httpChecker, Methods: map[string][]scopes.Requirement{
			unaryMethod: nil}, Public: []string{unaryMethod, "/x", publicMethod, publicMethod}},
			want: []string{"in both Config.Methods and Config.Public", `Config.Public: "/x" is not`, "lists " + `"` + publicMethod + `" twice`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := grpcguard.New(tt.cfg)
			require.ErrorIs(t, err, grpcguard.ErrConfig)
			assert.Nil(t, g)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		g, err := grpcguard.New(grpcguard.Config{Checker: httpChecker, Methods: methods(), Public: []string{publicMethod, "/grpc.health.v1.Health/*"}})
		require.NoError(t, err)
		assert.Same(t, httpChecker, g.Checker())
	})
}
