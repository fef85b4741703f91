package grpcguard_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/grpcguard"
)

// certificate makes a self-signed TLS certificate: a server's for
// 127.0.0.1, or a client's.
func certificate(t *testing.T, server bool) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "svc"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.Subject.CommonName = "api.test"
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: leaf}
}

// serveTLS starts a gRPC server of the test service behind g's
// interceptors over real TLS on loopback, asking clients for a certificate
// (RFC 8705 §2.2: self-signed ones included, not verified against a CA).
// dial connects a client presenting certs; addr is the server's
// host:port, the :authority of its clients. Everything is stopped when the
// test ends.
func serveTLS(t *testing.T, g *grpcguard.Guard) (dial func(certs ...tls.Certificate) testgrpc.TestServiceClient, addr string) {
	t.Helper()
	server := certificate(t, true)
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{server}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12})),
		grpc.ChainUnaryInterceptor(g.Unary()), grpc.ChainStreamInterceptor(g.Stream()))
	testgrpc.RegisterTestServiceServer(srv, service{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		require.NoError(t, <-served)
	})
	roots := x509.NewCertPool()
	roots.AddCert(server.Leaf)
	addr = lis.Addr().String()
	dial = func(certs ...tls.Certificate) testgrpc.TestServiceClient {
		t.Helper()
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(
			&tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12})))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return testgrpc.NewTestServiceClient(conn)
	}
	return dial, addr
}

// TestCertificateBoundTokens runs a Guard behind real TLS on loopback
// (RFC 8705 §3): the token's cnf x5t#S256 must be the client certificate's.
func TestCertificateBoundTokens(t *testing.T) {
	e := newDPoPEnv(t)
	dial, _ := serveTLS(t, e.guard(t, nil))
	mine, theirs := certificate(t, false), certificate(t, false)
	bound := e.iss.MTLSBound("svc", mine.Leaf, "data:read")
	withMine, withTheirs, withNone := dial(mine), dial(theirs), dial()
	tests := []struct {
		name   string
		client testgrpc.TestServiceClient
		token  string
		caller string // "" when refused
	}{
		{"the token's certificate", withMine, bound, "svc m2m data:read +mtls"},
		{"no certificate", withNone, bound, ""},
		{"another certificate", withTheirs, bound, ""},
		{"unbound token with a certificate", withMine, e.iss.M2M("svc", "data:read"), "svc m2m data:read"},
	}
	for _, k := range kinds {
		for _, tt := range tests {
			t.Run(string(k)+"/"+tt.name, func(t *testing.T) {
				res := call(t, tt.client, k, "Bearer "+tt.token)
				if tt.caller != "" {
					require.NoError(t, res.Err)
					assert.Equal(t, tt.caller, res.Caller)
					return
				}
				require.Error(t, res.Err)
				code, reason := reasonOf(t, res.Err)
				assert.Equal(t, codes.Unauthenticated, code)
				assert.Equal(t, "CERTIFICATE_MISMATCH", reason)
				assert.Contains(t, challengeOf(t, res.Trailer), `Bearer realm="api", error="invalid_token"`)
			})
		}
	}
}

// Without TLS there is no client certificate: a certificate-bound token is
// refused.
func TestCertificateBoundTokenWithoutTLS(t *testing.T) {
	e := newDPoPEnv(t)
	c := serve(t, overBufconn, e.guard(t, nil))
	res := call(t, c, unary, "Bearer "+e.iss.MTLSBound("svc", certificate(t, false).Leaf, "data:read"))
	require.Error(t, res.Err)
	code, reason := reasonOf(t, res.Err)
	assert.Equal(t, codes.Unauthenticated, code)
	assert.Equal(t, "CERTIFICATE_MISMATCH", reason)
	assert.Contains(t, challengeOf(t, res.Trailer), `error="invalid_token"`)
}

// Over TLS, without Config.BaseURI, htu is https and the call's
// :authority; a token bound both to a DPoP key and to the client
// certificate needs both.
func TestDPoPOverTLS(t *testing.T) {
	e := newDPoPEnv(t)
	dial, addr := serveTLS(t, e.guard(t, func(c *grpcguard.Config) { c.BaseURI = "" }))
	mine := certificate(t, false)
	both := e.iss.Sign(func() map[string]any {
		c := e.iss.Claims("svc", "svc", "data:read")
		c["cnf"] = map[string]any{"jkt": e.key.Thumbprint(), "x5t#S256": jwkstest.CertificateThumbprint(mine.Leaf)}
		return c
	}())
	withMine, withNone := dial(mine), dial()
	tests := []struct {
		name   string
		client testgrpc.TestServiceClient
		htu    func(k kind) string
		reason string // "" when admitted
	}{
		{"https and the authority", withMine, func(k kind) string { return "https://" + addr + methodOf(k) }, ""},
		{"http for a TLS call", withMine, func(k kind) string { return "http://" + addr + methodOf(k) }, "INVALID_DPOP_PROOF"},
		{"the BaseURI of other tests", withMine, func(k kind) string { return baseURI + methodOf(k) }, "INVALID_DPOP_PROOF"},
		{"no client certificate", withNone, func(k kind) string { return "https://" + addr + methodOf(k) }, "CERTIFICATE_MISMATCH"},
	}
	for _, k := range kinds {
		for _, tt := range tests {
			t.Run(string(k)+"/"+tt.name, func(t *testing.T) {
				res := dpopCall(t, tt.client, k, "DPoP "+both, e.proof(tt.htu(k), both, nil))
				if tt.reason == "" {
					require.NoError(t, res.Err)
					assert.Equal(t, "svc m2m data:read +dpop +mtls", res.Caller)
					return
				}
				require.Error(t, res.Err)
				code, reason := reasonOf(t, res.Err)
				assert.Equal(t, codes.Unauthenticated, code)
				assert.Equal(t, tt.reason, reason)
			})
		}
	}
}
