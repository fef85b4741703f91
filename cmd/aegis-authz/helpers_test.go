package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
)

// issueRoutes is the routes file of issue 16.
const issueRoutes = `{"routes": [
  {"methods": ["GET"],  "path": "/data",      "scopes": {"all": ["data:read"]}},
  {"methods": ["POST"], "path": "/data",      "scopes": {"all": ["data:write"]}},
  {"path": "/reports/*", "scopes": {"any": ["reports:read", "admin"]}},
  {"path": "/public/*", "public": true},
  {"path": "/whoami"}
]}`

// newTestService is a Service for iss's tokens over routes.
func newTestService(t testing.TB, iss *jwkstest.Issuer, routes, policy string, rl *middleware.RateLimitConfig) *Service {
	t.Helper()
	rules, err := ParseRoutes([]byte(routes))
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	guard, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, RateLimit: rl, Logger: log})
	require.NoError(t, err)
	svc, err := NewService(ServiceConfig{Guard: guard, Rules: rules, DefaultPolicy: policy, Logger: log})
	require.NoError(t, err)
	return svc
}

// answer is a decision as a gateway sees it: for gRPC, the OK
// response's headers (the identity headers to set, the rate-limit headers
// to add) or the denied response's.
type answer struct {
	status int
	header http.Header
	body   string
	// removed is the OK response's headers_to_remove (gRPC only).
	removed []string
}

// transport asks a Service about a request (method, request URI,
// headers) the way one kind of gateway does.
type transport struct {
	name string
	ask  func(t *testing.T, method, uri string, h http.Header) answer
}

// transports are the three ways to ask svc: forward auth (X-Forwarded-*),
// Envoy's HTTP ext_authz (the request itself) and Envoy's gRPC ext_authz.
func transports(t *testing.T, svc *Service) []transport {
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	client := checkClient(t, svc)
	return []transport{
		{"forwarded", func(t *testing.T, method, uri string, h http.Header) answer {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/auth", nil)
			require.NoError(t, err)
			for k, v := range h {
				req.Header[k] = v
			}
			req.Header.Set(HeaderForwardedMethod, method)
			req.Header.Set(HeaderForwardedURI, uri)
			return do(t, req)
		}},
		{"direct", func(t *testing.T, method, uri string, h http.Header) answer {
			req, err := http.NewRequest(method, srv.URL, nil)
			require.NoError(t, err)
			req.URL.Opaque = uri // sent as is, unlike a parsed path
			for k, v := range h {
				req.Header[k] = v
			}
			return do(t, req)
		}},
		{"grpc", func(t *testing.T, method, uri string, h http.Header) answer {
			return askGRPC(t, client, method, uri, h)
		}},
	}
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// checkClient serves svc's Authorization over an in-memory connection.
func checkClient(t testing.TB, svc *Service) authv3.AuthorizationClient {
	ln := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, svc.Authorization())
	go func() { _ = gs.Serve(ln) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
	})
	return authv3.NewAuthorizationClient(conn)
}

// checkRequest is a CheckRequest filled as Envoy fills it: lower-case
// header names, pseudo-headers among them, the path with its query.
func checkRequest(method, uri string, h http.Header) *authv3.CheckRequest {
	headers := map[string]string{":authority": "api.example.com", ":method": method, ":path": uri, "x-request-id": "r-1"}
	for k, v := range h {
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Id: "1", Method: method, Path: uri, Host: "api.example.com", Scheme: "https",
			Protocol: "HTTP/1.1", Headers: headers},
	}}}
}

func askGRPC(t *testing.T, client authv3.AuthorizationClient, method, uri string, h http.Header) answer {
	t.Helper()
	return checkGRPC(t, client, checkRequest(method, uri, h))
}

// checkGRPC asks client about req and reads the answer as a gateway does.
func checkGRPC(t *testing.T, client authv3.AuthorizationClient, req *authv3.CheckRequest) answer {
	t.Helper()
	resp, err := client.Check(context.Background(), req)
	require.NoError(t, err)
	require.NoError(t, resp.Validate())
	a := answer{header: http.Header{}}
	if ok := resp.GetOkResponse(); ok != nil {
		require.Equal(t, int32(0), resp.GetStatus().GetCode())
		a.status = http.StatusOK
		for _, o := range append(ok.GetHeaders(), ok.GetResponseHeadersToAdd()...) {
			a.header.Add(o.GetHeader().GetKey(), o.GetHeader().GetValue())
		}
		a.removed = ok.GetHeadersToRemove()
		return a
	}
	denied := resp.GetDeniedResponse()
	require.NotNil(t, denied, "OK or denied")
	require.NotEqual(t, int32(0), resp.GetStatus().GetCode())
	a.status = int(denied.GetStatus().GetCode())
	for _, o := range denied.GetHeaders() {
		a.header.Add(o.GetHeader().GetKey(), o.GetHeader().GetValue())
	}
	a.body = denied.GetBody()
	return a
}

func bearer(token string) http.Header {
	if token == "" {
		return http.Header{}
	}
	return http.Header{"Authorization": {"Bearer " + token}}
}

func newIssuer(t testing.TB) *jwkstest.Issuer { return jwkstest.NewIssuer(t, jwkstest.Config{}) }

// forwarded is a forward-auth request for method and uri with token.
func forwarded(method, uri, token string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "http://authz/auth", nil)
	req.Header.Set(HeaderForwardedMethod, method)
	req.Header.Set(HeaderForwardedURI, uri)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}
