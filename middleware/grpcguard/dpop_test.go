package grpcguard_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/middleware/grpcguard"
)

// dpopT0 is the fixed time of the DPoP tests: of the tokens, the proofs
// and the Guards' clocks.
var dpopT0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func dpopClock() time.Time { return dpopT0 }

// baseURI is the tests' Config.BaseURI.
const baseURI = "https://api.test"

// methodOf is the full method name a call of kind k makes.
func methodOf(k kind) string {
	if k == stream {
		return streamMethod
	}
	return unaryMethod
}

// dpopEnv is an issuer of tokens and the client's DPoP key.
type dpopEnv struct {
	iss *jwkstest.Issuer
	key *jwkstest.Key
}

func newDPoPEnv(t *testing.T) *dpopEnv {
	t.Helper()
	return &dpopEnv{iss: jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: jwks.ES256, Now: dpopClock}), key: jwkstest.NewKey(jwks.ES256)}
}

// guard returns a Guard of the tests' methods and BaseURI, changed by mod.
func (e *dpopEnv) guard(t *testing.T, mod func(c *grpcguard.Config)) *grpcguard.Guard {
	t.Helper()
	cfg := grpcguard.Config{Issuer: e.iss.URL, Audience: e.iss.Audience, Methods: methods(), BaseURI: baseURI,
		Now: dpopClock, Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	g, err := grpcguard.New(cfg)
	require.NoError(t, err)
	return g
}

// proof is a proof of e's key for a POST to htu with token, changed by mod.
func (e *dpopEnv) proof(htu, token string, mod func(p *jwkstest.DPoPProof)) string {
	p := jwkstest.DPoPProof{Method: http.MethodPost, URL: htu, AccessToken: token, IssuedAt: dpopT0}
	if mod != nil {
		mod(&p)
	}
	return e.key.DPoPProof(p)
}

// dpopCall makes a call of kind k presenting auth (none when "") as its
// authorization metadata and a dpop metadata value for each of proofs.
func dpopCall(t testing.TB, c testgrpc.TestServiceClient, k kind, auth string, proofs ...string) result {
	t.Helper()
	ctx := t.Context()
	if auth != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", auth)
	}
	for _, p := range proofs {
		ctx = metadata.AppendToOutgoingContext(ctx, "dpop", p)
	}
	return callCtx(ctx, t, c, k)
}

// reasonOf returns the code and ErrorInfo reason of a refused call.
func reasonOf(t testing.TB, err error) (codes.Code, string) {
	t.Helper()
	st, ok := status.FromError(err)
	require.True(t, ok, "not a status error: %v", err)
	info, _ := details(t, st)
	require.NotNil(t, info)
	return st.Code(), info.GetReason()
}

func TestDPoP(t *testing.T) {
	e := newDPoPEnv(t)
	bound := e.iss.DPoPBound("svc", e.key, "data:read")
	plain := e.iss.M2M("svc", "data:read")
	allow := e.guard(t, nil)
	require_ := e.guard(t, func(c *grpcguard.Config) { c.DPoP.Policy = dpop.Require })
	off := e.guard(t, func(c *grpcguard.Config) { c.DPoP.Policy = dpop.Off })
	const (
		bareBearer = `Bearer realm="api"`
		badProof   = `DPoP realm="api", error="invalid_dpop_proof", error_description="The DPoP proof is invalid", ` + algs
	)
	tests := []struct {
		name  string
		guard *grpcguard.Guard
		// auth is the authorization metadata; proofs makes the dpop
		// values for a call to htu (the call's own: BaseURI and method).
		auth   string
		proofs func(htu string) []string
		caller string
		reason string
		// challenges are the www-authenticate values, in order; nil
		// checks none.
		challenges []string
	}{
		{name: "DPoP-bound token with its proof", guard: allow, auth: "DPoP " + bound,
			proofs: func(htu string) []string { return []string{e.proof(htu, bound, nil)} }, caller: "svc m2m data:read +dpop"},
		{name: "scheme in lower case", guard: allow, auth: "dpop " + bound,
			proofs: func(htu string) []string { return []string{e.proof(htu, bound, nil)} }, caller: "svc m2m data:read +dpop"},
		{name: "plain Bearer token", guard: allow, auth: "Bearer " + plain, caller: "svc m2m data:read"},
		{name: "no token: both challenges, bare", guard: allow, reason: "TOKEN_MISSING",
			challenges: []string{bareBearer, bareDPoP}},
		{name: "empty DPoP credentials", guard: allow, auth: "DPoP ", reason: "REQUEST_MALFORMED"},
		{name: "DPoP without proof", guard: allow, auth: "DPoP " + bound, reason: "INVALID_DPOP_PROOF",
			challenges: []string{bareBearer, badProof}},
		{name: "two dpop values", guard: allow, auth: "DPoP " + bound, proofs: func(htu string) []string {
			return []string{e.proof(htu, bound, nil), e.proof(htu, bound, nil)}
		}, reason: "INVALID_DPOP_PROOF", challenges: []string{bareBearer,
			`DPoP realm="api", error="invalid_dpop_proof", error_description="The call has more than one dpop metadata value", ` + algs}},
		{name: "proof for another method", guard: allow, auth: "DPoP " + bound, proofs: func(string) []string {
			return []string{e.proof(baseURI+emptyMethod, bound, nil)}
		}, reason: "INVALID_DPOP_PROOF", challenges: []string{bareBearer, badProof}},
		{name: "proof for another host", guard: allow, auth: "DPoP " + bound, proofs: func(htu string) []string {
			return []string{e.proof("https://other.test"+htu[len(baseURI):], bound, nil)}
		}, reason: "INVALID_DPOP_PROOF"},
		{name: "proof over http for the https BaseURI", guard: allow, auth: "DPoP " + bound, proofs: func(htu string) []string {
			return []string{e.proof("http://api.test"+htu[len(baseURI):], bound, nil)}
		}, reason: "INVALID_DPOP_PROOF"},
		{name: "proof for GET", guard: allow, auth: "DPoP " + bound, proofs: func(htu string) []string {
			return []string{e.proof(htu, bound, func(p *jwkstest.DPoPProof) { p.Method = http.MethodGet })}
		}, reason: "INVALID_DPOP_PROOF"},
		{name: "proof of another key", guard: allow, auth: "DPoP " + bound, proofs: func(htu string) []string {
			return []string{jwkstest.NewKey(jwks.ES256).DPoPProof(jwkstest.DPoPProof{Method: http.MethodPost, URL: htu, AccessToken: bound, IssuedAt: dpopT0})}
		}, reason: "INVALID_DPOP_PROOF"},
		{name: "proof for another token", guard: allow, auth: "DPoP " + bound, proofs: func(htu string) []string {
			return []string{e.proof(htu, plain, nil)}
		}, reason: "INVALID_DPOP_PROOF"},
		{name: "stale proof", guard: allow, auth: "DPoP " + bound, proofs: func(htu string) []string {
			return []string{e.proof(htu, bound, func(p *jwkstest.DPoPProof) { p.IssuedAt = dpopT0.Add(-time.Hour) })}
		}, reason: "INVALID_DPOP_PROOF"},
		{name: "garbage proof", guard: allow, auth: "DPoP " + bound, proofs: func(string) []string { return []string{"garbage"} },
			reason: "INVALID_DPOP_PROOF"},
		{name: "DPoP-bound token downgraded to Bearer", guard: allow, auth: "Bearer " + bound, reason: "BINDING_MISMATCH",
			challenges: []string{`Bearer realm="api", error="invalid_token", error_description="The access token is DPoP-bound: present it with the DPoP scheme and a proof"`, bareDPoP}},
		{name: "DPoP scheme with an unbound token", guard: allow, auth: "DPoP " + plain, proofs: func(htu string) []string {
			return []string{e.proof(htu, plain, nil)}
		}, reason: "BINDING_MISMATCH", challenges: []string{bareBearer,
			`DPoP realm="api", error="invalid_token", error_description="The access token is not DPoP-bound", ` + algs}},
		{name: "require: plain Bearer token, DPoP challenge only", guard: require_, auth: "Bearer " + plain, reason: "BINDING_MISMATCH",
			challenges: []string{`DPoP realm="api", error="invalid_token", error_description="Only DPoP-bound access tokens are accepted here", ` + algs}},
		{name: "require: no token, DPoP challenge only", guard: require_, reason: "TOKEN_MISSING", challenges: []string{bareDPoP}},
		{name: "require: DPoP-bound token with its proof", guard: require_, auth: "DPoP " + bound,
			proofs: func(htu string) []string { return []string{e.proof(htu, bound, nil)} }, caller: "svc m2m data:read +dpop"},
		{name: "off: DPoP-bound token with its proof, Bearer challenge only", guard: off, auth: "DPoP " + bound,
			proofs: func(htu string) []string { return []string{e.proof(htu, bound, nil)} }, reason: "BINDING_MISMATCH",
			challenges: []string{`Bearer realm="api", error="invalid_token", error_description="DPoP is not accepted here"`}},
		{name: "off: DPoP-bound token as Bearer", guard: off, auth: "Bearer " + bound, reason: "BINDING_MISMATCH",
			challenges: []string{`Bearer realm="api", error="invalid_token", error_description="The access token is DPoP-bound and DPoP is not accepted here"`}},
		{name: "off: no token, Bearer challenge only", guard: off, reason: "TOKEN_MISSING", challenges: []string{bareBearer}},
		{name: "off: plain Bearer token", guard: off, auth: "Bearer " + plain, caller: "svc m2m data:read"},
	}
	clients := map[*grpcguard.Guard]testgrpc.TestServiceClient{}
	for _, g := range []*grpcguard.Guard{allow, require_, off} {
		clients[g] = serve(t, overBufconn, g)
	}
	for _, k := range kinds {
		for _, tt := range tests {
			t.Run(string(k)+"/"+tt.name, func(t *testing.T) {
				var proofs []string
				if tt.proofs != nil {
					proofs = tt.proofs(baseURI + methodOf(k))
				}
				res := dpopCall(t, clients[tt.guard], k, tt.auth, proofs...)
				if tt.reason == "" {
					require.NoError(t, res.Err)
					assert.Equal(t, tt.caller, res.Caller)
					assert.Empty(t, challengesOf(res.Trailer))
					return
				}
				require.Error(t, res.Err)
				code, reason := reasonOf(t, res.Err)
				assert.Equal(t, codes.Unauthenticated, code)
				assert.Equal(t, tt.reason, reason)
				if tt.challenges != nil {
					assert.Equal(t, tt.challenges, challengesOf(res.Trailer))
				}
				for _, secret := range append([]string{tt.auth}, proofs...) {
					if len(secret) > 16 {
						assert.NotContains(t, res.Err.Error(), secret[8:])
					}
				}
				// No nonce is demanded, so none is sent.
				assert.Empty(t, res.Trailer.Get("dpop-nonce"))
			})
		}
	}
}

// A proof is good for one call: its second use is refused, on the stream
// method as on the unary one.
func TestDPoPReplayedProof(t *testing.T) {
	e := newDPoPEnv(t)
	c := serve(t, overBufconn, e.guard(t, nil))
	bound := e.iss.DPoPBound("svc", e.key, "data:read")
	for _, k := range kinds {
		t.Run(string(k), func(t *testing.T) {
			p := e.proof(baseURI+methodOf(k), bound, nil)
			res := dpopCall(t, c, k, "DPoP "+bound, p)
			require.NoError(t, res.Err)
			assert.Equal(t, "svc m2m data:read +dpop", res.Caller)

			res = dpopCall(t, c, k, "DPoP "+bound, p)
			require.Error(t, res.Err)
			code, reason := reasonOf(t, res.Err)
			assert.Equal(t, codes.Unauthenticated, code)
			assert.Equal(t, "INVALID_DPOP_PROOF", reason)
		})
	}
}

// A replay store that cannot answer makes the call Unavailable, with a
// retry delay and no challenge.
func TestDPoPReplayStoreUnavailable(t *testing.T) {
	e := newDPoPEnv(t)
	v, err := dpop.New(dpop.Config{Replay: brokenStore{}, Now: dpopClock})
	require.NoError(t, err)
	c := serve(t, overBufconn, e.guard(t, func(c *grpcguard.Config) { c.DPoP.Verifier = v }))
	bound := e.iss.DPoPBound("svc", e.key, "data:read")
	res := dpopCall(t, c, unary, "DPoP "+bound, e.proof(baseURI+unaryMethod, bound, nil))
	require.Error(t, res.Err)
	st, _ := status.FromError(res.Err)
	assert.Equal(t, codes.Unavailable, st.Code())
	info, retry := details(t, st)
	assert.Equal(t, "REPLAY_STORE_UNAVAILABLE", info.GetReason())
	assert.NotNil(t, retry)
	assert.Empty(t, challengesOf(res.Trailer))
}

// brokenStore is a replay store whose every lookup fails.
type brokenStore struct{}

func (brokenStore) Seen(context.Context, string, time.Time) (bool, error) {
	return false, assert.AnError
}

// A Verifier that demands nonces refuses the first proof with
// use_dpop_nonce and the nonce in the trailer; a proof with that nonce
// passes, and the admitted call gets the nonce in its header metadata.
func TestDPoPNonce(t *testing.T) {
	e := newDPoPEnv(t)
	v, err := dpop.New(dpop.Config{Nonce: &dpop.NonceConfig{}, Now: dpopClock})
	require.NoError(t, err)
	c := serve(t, overBufconn, e.guard(t, func(c *grpcguard.Config) { c.DPoP.Verifier = v }))
	bound := e.iss.DPoPBound("svc", e.key, "data:read")
	for _, k := range kinds {
		t.Run(string(k), func(t *testing.T) {
			htu := baseURI + methodOf(k)
			res := dpopCall(t, c, k, "DPoP "+bound, e.proof(htu, bound, nil))
			require.Error(t, res.Err)
			code, reason := reasonOf(t, res.Err)
			assert.Equal(t, codes.Unauthenticated, code)
			assert.Equal(t, "USE_DPOP_NONCE", reason)
			nonce := res.Trailer.Get("dpop-nonce")
			require.Len(t, nonce, 1)
			require.NotEmpty(t, nonce[0])
			assert.Equal(t, []string{`Bearer realm="api"`,
				`DPoP realm="api", error="use_dpop_nonce", error_description="The DPoP proof must carry the server's nonce", ` + algs},
				challengesOf(res.Trailer))

			res = dpopCall(t, c, k, "DPoP "+bound, e.proof(htu, bound, func(p *jwkstest.DPoPProof) { p.Nonce = nonce[0] }))
			require.NoError(t, res.Err)
			assert.Equal(t, "svc m2m data:read +dpop", res.Caller)
			assert.Equal(t, nonce, res.Header.Get("dpop-nonce"))
		})
	}
	// A Bearer call is not told the nonce.
	res := call(t, c, unary, "Bearer "+e.iss.M2M("svc", "data:read"))
	require.NoError(t, res.Err)
	assert.Empty(t, res.Header.Get("dpop-nonce"))
}

// Config.DPoPMethods sets a method's own policy.
func TestDPoPMethods(t *testing.T) {
	e := newDPoPEnv(t)
	c := serve(t, overBufconn, e.guard(t, func(c *grpcguard.Config) {
		c.DPoPMethods = map[string]dpop.Policy{unaryMethod: dpop.Require}
	}))
	bound := e.iss.DPoPBound("svc", e.key, "data:read")
	plain := "Bearer " + e.iss.M2M("svc", "data:read")

	res := call(t, c, unary, plain)
	require.Error(t, res.Err)
	_, reason := reasonOf(t, res.Err)
	assert.Equal(t, "BINDING_MISMATCH", reason)
	assert.Equal(t, []string{`DPoP realm="api", error="invalid_token", error_description="Only DPoP-bound access tokens are accepted here", ` + algs},
		challengesOf(res.Trailer))

	res = dpopCall(t, c, unary, "DPoP "+bound, e.proof(baseURI+unaryMethod, bound, nil))
	require.NoError(t, res.Err)
	assert.Equal(t, "svc m2m data:read +dpop", res.Caller)

	res = call(t, c, stream, plain) // the stream method keeps the default, dpop.Allow
	require.NoError(t, res.Err)
	assert.Equal(t, "svc m2m data:read", res.Caller)
}

// Without Config.BaseURI, htu is taken from the call: http (bufconn has no
// TLS) and the :authority the client sent.
func TestDPoPDerivedBaseURI(t *testing.T) {
	e := newDPoPEnv(t)
	c := serve(t, overBufconn, e.guard(t, func(c *grpcguard.Config) { c.BaseURI = "" }))
	bound := e.iss.DPoPBound("svc", e.key, "data:read")
	for _, tt := range []struct {
		htu string
		ok  bool
	}{
		{"http://bufconn" + unaryMethod, true},
		{"http://BUFCONN:80" + unaryMethod, true}, // compared normalized
		{"https://bufconn" + unaryMethod, false},
		{baseURI + unaryMethod, false},
		{"http://bufconn" + streamMethod, false},
	} {
		t.Run(tt.htu, func(t *testing.T) {
			res := dpopCall(t, c, unary, "DPoP "+bound, e.proof(tt.htu, bound, nil))
			if tt.ok {
				require.NoError(t, res.Err)
				assert.Equal(t, "svc m2m data:read +dpop", res.Caller)
				return
			}
			require.Error(t, res.Err)
			_, reason := reasonOf(t, res.Err)
			assert.Equal(t, "INVALID_DPOP_PROOF", reason)
		})
	}
}

func TestBaseURIConfig(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	for _, tt := range []struct {
		base string
		err  string // "" when valid
	}{
		{base: "https://api.example.com"},
		{base: "https://api.example.com/"},
		{base: "http://localhost:8080"},
		{base: "HTTPS://API.example.com:8443"},
		{base: "api.example.com", err: "is not an http or https URL"},
		{base: "grpc://api.example.com", err: "is not an http or https URL"},
		{base: "https://", err: "has no host"},
		{base: "https:api.example.com", err: "has no host"},
		{base: "https://:443", err: "has no host"},
		{base: "https://user@api.example.com", err: "has user information"},
		{base: "https://api.example.com/v1", err: "has a path"},
		{base: "https://api.example.com/?x=1", err: "has a query"},
		{base: "https://api.example.com?", err: "has a query"},
		{base: "https://api.example.com/#top", err: "has a fragment"},
		{base: "https://api.example.com#", err: "has a fragment"},
		{base: "https://api example.com", err: "is not a URL"},
	} {
		t.Run(tt.base, func(t *testing.T) {
			_, err := grpcguard.New(grpcguard.Config{Issuer: iss.URL, Audience: iss.Audience, Methods: methods(), BaseURI: tt.base})
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, grpcguard.ErrConfig)
			assert.ErrorContains(t, err, "Config.BaseURI")
			assert.ErrorContains(t, err, tt.err)
		})
	}
}

func TestDPoPConfigErrors(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	checker, err := core.New(core.Config{Validator: core.Cached(mustJWT(t, iss), core.CacheConfig{})})
	require.NoError(t, err)
	for _, tt := range []struct {
		name string
		cfg  grpcguard.Config
		err  string
	}{
		{"DPoP with a shared Checker", grpcguard.Config{Checker: checker, Methods: methods(), DPoP: core.DPoPConfig{Policy: dpop.Require}},
			"Config.Checker decides alone"},
		{"unknown policy", grpcguard.Config{Issuer: iss.URL, Audience: iss.Audience, Methods: methods(), DPoP: core.DPoPConfig{Policy: "sometimes"}},
			`Config.DPoP.Policy "sometimes"`},
		{"unknown method policy", grpcguard.Config{Issuer: iss.URL, Audience: iss.Audience, Methods: methods(),
			DPoPMethods: map[string]dpop.Policy{unaryMethod: "sometimes"}}, `Config.DPoPMethods["/grpc.testing.TestService/UnaryCall"]`},
		{"method policy of an unlisted method", grpcguard.Config{Issuer: iss.URL, Audience: iss.Audience, Methods: methods(),
			DPoPMethods: map[string]dpop.Policy{emptyMethod: dpop.Require}}, "is not a key of Config.Methods"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := grpcguard.New(tt.cfg)
			require.ErrorIs(t, err, grpcguard.ErrConfig)
			assert.ErrorContains(t, err, tt.err)
		})
	}
	// A shared Checker's policy applies, and DPoPMethods still works with it.
	strict, err := core.New(core.Config{Validator: core.Cached(mustJWT(t, iss), core.CacheConfig{}), DPoP: core.DPoPConfig{Policy: dpop.Require}})
	require.NoError(t, err)
	g, err := grpcguard.New(grpcguard.Config{Checker: strict, Methods: methods(), DPoPMethods: map[string]dpop.Policy{streamMethod: dpop.Allow}})
	require.NoError(t, err)
	c := serve(t, overBufconn, g)
	plain := "Bearer " + iss.M2M("svc", "data:read")
	res := call(t, c, unary, plain)
	require.Error(t, res.Err)
	_, reason := reasonOf(t, res.Err)
	assert.Equal(t, "BINDING_MISMATCH", reason)
	require.NoError(t, call(t, c, stream, plain).Err)
}

func mustJWT(t *testing.T, iss *jwkstest.Issuer) core.Validator {
	t.Helper()
	v, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience})
	require.NoError(t, err)
	return v
}

// The reasons of sender-constrained tokens map to gRPC codes by their
// class.
func TestStatusOfBindingReasons(t *testing.T) {
	for reason, code := range map[aegis.Reason]codes.Code{
		aegis.ReasonInvalidDPoPProof:       codes.Unauthenticated,
		aegis.ReasonUseDPoPNonce:           codes.Unauthenticated,
		aegis.ReasonBindingMismatch:        codes.Unauthenticated,
		aegis.ReasonCertificateMismatch:    codes.Unauthenticated,
		aegis.ReasonReplayStoreUnavailable: codes.Unavailable,
	} {
		t.Run(string(reason), func(t *testing.T) {
			r := aegis.Refuse(reason, nil)
			if reason.Class() == aegis.ClassUnavailable {
				r = aegis.Unavailable(reason, time.Second, nil)
			}
			st := grpcguard.Status(r)
			assert.Equal(t, code, st.Code())
			info, _ := details(t, st)
			assert.Equal(t, strings.ToUpper(string(reason)), info.GetReason())
		})
	}
}
