package grpcguard_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/grpcguard"
	"github.com/olympus/aegis/scopes"
)

// The test service's methods (grpc.testing.TestService, shipped compiled
// with gRPC).
const (
	unaryMethod  = "/grpc.testing.TestService/UnaryCall"
	streamMethod = "/grpc.testing.TestService/StreamingOutputCall"
	emptyMethod  = "/grpc.testing.TestService/EmptyCall"      // unlisted
	duplexMethod = "/grpc.testing.TestService/FullDuplexCall" // unlisted
	publicMethod = "/grpc.testing.TestService/CacheableUnaryCall"
)

// methods are the requirements of the tests' Guards: the unary call needs
// data:read, the streaming call data:read or data:stream.
func methods() map[string][]scopes.Requirement {
	return map[string][]scopes.Requirement{
		unaryMethod:  {scopes.All("data:read")},
		streamMethod: {scopes.Any("data:read", "data:stream")},
	}
}

// service answers with the caller the interceptors admitted: its subject,
// kind and scopes ("anonymous" when there is none), then "+dpop" when it
// proved a DPoP key and "+mtls" when its token is bound to its TLS client
// certificate.
type service struct {
	testgrpc.UnimplementedTestServiceServer
}

func caller(ctx context.Context) string {
	p, ok := middleware.PrincipalFrom(ctx)
	if !ok {
		return "anonymous"
	}
	s := p.Subject + " " + string(p.Kind) + " " + p.Scopes.String()
	if p.DPoPBound() {
		s += " +dpop"
	}
	if p.CertificateBound() {
		s += " +mtls"
	}
	return s
}

func (service) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, nil
}

func (service) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Username: caller(ctx)}, nil
}

func (service) CacheableUnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Username: caller(ctx)}, nil
}

func (service) StreamingOutputCall(_ *testgrpc.StreamingOutputCallRequest, s grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	for range 2 {
		if err := s.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: []byte(caller(s.Context()))}}); err != nil {
			return err
		}
	}
	return nil
}

func (service) FullDuplexCall(s grpc.BidiStreamingServer[testgrpc.StreamingOutputCallRequest, testgrpc.StreamingOutputCallResponse]) error {
	return s.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: []byte(caller(s.Context()))}})
}

// transport is how a test's client reaches its server.
type transport string

const (
	overBufconn transport = "bufconn"
	overTCP     transport = "tcp"
)

var transports = []transport{overBufconn, overTCP}

// serve starts a gRPC server of the test service behind g's interceptors
// (none when g is nil) and returns a client connected to it over tr. Both
// are stopped when the test ends.
func serve(t testing.TB, tr transport, g *grpcguard.Guard) testgrpc.TestServiceClient {
	t.Helper()
	var opts []grpc.ServerOption
	if g != nil {
		opts = append(opts, grpc.ChainUnaryInterceptor(g.Unary()), grpc.ChainStreamInterceptor(g.Stream()))
	}
	srv := grpc.NewServer(opts...)
	testgrpc.RegisterTestServiceServer(srv, service{})
	return connect(t, tr, srv)
}

// dial serves srv over bufconn and returns a client connected to it.
func dial(t testing.TB, srv *grpc.Server) testgrpc.TestServiceClient {
	t.Helper()
	return connect(t, overBufconn, srv)
}

// connect serves srv over tr and returns a client connected to it. Both
// are stopped when the test ends.
func connect(t testing.TB, tr transport, srv *grpc.Server) testgrpc.TestServiceClient {
	t.Helper()
	var lis net.Listener
	dialOpts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	target := ""
	switch tr {
	case overBufconn:
		bl := bufconn.Listen(1 << 20)
		lis, target = bl, "passthrough:///bufconn"
		dialOpts = append(dialOpts, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return bl.DialContext(ctx)
		}))
	case overTCP:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lis, target = l, l.Addr().String()
	default:
		t.Fatalf("unknown transport %q", tr)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	conn, err := grpc.NewClient(target, dialOpts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		require.NoError(t, <-served)
	})
	return testgrpc.NewTestServiceClient(conn)
}

// kind is a call's shape.
type kind string

const (
	unary  kind = "unary"
	stream kind = "stream"
)

var kinds = []kind{unary, stream}

// result is what a call returned: the caller the handler saw, or the
// error, and the metadata the server sent.
type result struct {
	Caller  string
	Err     error
	Header  metadata.MD
	Trailer metadata.MD
}

// authorization returns ctx with an authorization metadata value for each
// of values.
func authorization(ctx context.Context, values ...string) context.Context {
	for _, v := range values {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", v)
	}
	return ctx
}

// call makes a call of kind k to the method the kind stands for (the
// unary or the streaming one), presenting values as authorization
// metadata.
func call(t testing.TB, c testgrpc.TestServiceClient, k kind, values ...string) result {
	t.Helper()
	return callCtx(authorization(t.Context(), values...), t, c, k)
}

// callCtx makes a call of kind k with ctx's outgoing metadata.
func callCtx(ctx context.Context, t testing.TB, c testgrpc.TestServiceClient, k kind) result {
	t.Helper()
	var res result
	switch k {
	case unary:
		resp, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Header(&res.Header), grpc.Trailer(&res.Trailer))
		res.Err = err
		if err == nil {
			res.Caller = resp.GetUsername()
		}
	case stream:
		s, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
		require.NoError(t, err) // the status comes with the first Recv
		var got []string
		for {
			resp, err := s.Recv()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					res.Err = err
				}
				break
			}
			got = append(got, string(resp.GetPayload().GetBody()))
		}
		res.Header, _ = s.Header()
		res.Trailer = s.Trailer()
		if res.Err == nil {
			require.Len(t, got, 2)
			require.Equal(t, got[0], got[1])
			res.Caller = got[0]
		}
	default:
		t.Fatalf("unknown kind %q", k)
	}
	return res
}

// refusal is what a test expects of a refused call.
type refusal struct {
	Reason    string // the ErrorInfo reason
	Challenge string // the www-authenticate trailer; "" for none
	Retry     bool   // a RetryInfo
}

// details returns the status's ErrorInfo and RetryInfo (nil when absent).
func details(t testing.TB, st *status.Status) (*errdetails.ErrorInfo, *errdetails.RetryInfo) {
	t.Helper()
	var info *errdetails.ErrorInfo
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			info = d
		case *errdetails.RetryInfo:
			retry = d
		default:
			t.Fatalf("unexpected detail %T", d)
		}
	}
	return info, retry
}

// algs is the algs parameter of the DPoP challenges of a default Verifier.
const algs = `algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA Ed25519"`

// bareDPoP is the DPoP challenge without an error, which follows the
// Bearer one under dpop.Allow (the default) when the call did not use DPoP.
const bareDPoP = `DPoP realm="api", ` + algs

// challengeOf returns the www-authenticate trailer's Bearer challenge, ""
// when absent. Under dpop.Allow it must be followed by the bare DPoP
// challenge, and only by that.
func challengeOf(t testing.TB, md metadata.MD) string {
	t.Helper()
	v := md.Get("www-authenticate")
	if len(v) == 0 {
		return ""
	}
	require.Len(t, v, 2)
	require.Equal(t, bareDPoP, v[1])
	return v[0]
}

// challengesOf returns every www-authenticate value of the trailer, in
// order.
func challengesOf(md metadata.MD) []string { return md.Get("www-authenticate") }

// decisions records the Checker's decisions, as a metrics Observer would.
type decisions struct {
	core.NopObserver
	ch chan core.Decision
}

func newDecisions() *decisions { return &decisions{ch: make(chan core.Decision, 100)} }

func (d *decisions) Decision(_ context.Context, dec core.Decision) { d.ch <- dec }

// next returns the next decision recorded.
func (d *decisions) next(t testing.TB) core.Decision {
	t.Helper()
	select {
	case dec := <-d.ch:
		return dec
	default:
		t.Fatal("no decision recorded")
		return core.Decision{}
	}
}
