package core_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/dpop"
)

const dataURL = "https://api.test/data"

// bindingFixture is an issuer, a client's DPoP key, and a Checker whose
// Validator is Hybrid(Cached(JWT), Introspection), all on one fixed clock.
type bindingFixture struct {
	iss       *jwkstest.Issuer
	key       *jwkstest.Key
	validator core.Validator
}

func newBindingFixture(t *testing.T) *bindingFixture {
	t.Helper()
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: jwks.ES256, Now: fixedClock})
	jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock})
	require.NoError(t, err)
	intro, err := core.NewIntrospection(introspect.Config{Issuer: iss.URL, Audience: iss.Audience, Endpoint: iss.IntrospectionURL(), Now: fixedClock})
	require.NoError(t, err)
	return &bindingFixture{iss: iss, key: jwkstest.NewKey(jwks.ES256),
		validator: core.Hybrid(core.Cached(jwt, core.CacheConfig{Now: fixedClock}), intro)}
}

func (f *bindingFixture) checker(t *testing.T, cfg core.DPoPConfig) *core.Checker {
	t.Helper()
	c, err := core.New(core.Config{Validator: f.validator, DPoP: cfg, Logger: quiet(), Now: fixedClock})
	require.NoError(t, err)
	return c
}

func (f *bindingFixture) proof(k *jwkstest.Key, token string) string {
	return k.DPoPProof(jwkstest.DPoPProof{Method: "GET", URL: dataURL, AccessToken: token, IssuedAt: t0})
}

func cred(token string, scheme core.Scheme, proof string) core.Credential {
	u, _ := url.Parse(dataURL)
	return core.Credential{Token: token, Method: "GET", URL: u, Scheme: scheme, Proof: proof}
}

func TestBinding(t *testing.T) {
	f := newBindingFixture(t)
	other := jwkstest.NewKey(jwks.ES256)
	plain := f.iss.M2M("svc", "data:read")
	bound := f.iss.DPoPBound("svc", f.key, "data:read")
	opaqueBound := f.iss.OpaqueDPoPBound("svc", f.key, "data:read")
	badCnf := f.iss.Claims("svc", "svc")
	badCnf["cnf"] = "jkt"
	cnfNotObject := f.iss.Sign(badCnf)
	badJKT := f.iss.Claims("svc", "svc")
	badJKT["cnf"] = map[string]any{"jkt": 42}
	jktNotString := f.iss.Sign(badJKT)

	tests := []struct {
		name   string
		cfg    core.DPoPConfig
		route  dpop.Policy
		cred   func() core.Credential
		reason aegis.Reason // ReasonAccepted when admitted
		dpop   bool         // the Principal is DPoPBound
	}{
		{name: "allow: plain Bearer token", cred: func() core.Credential { return cred(plain, core.SchemeBearer, "") }, reason: aegis.ReasonAccepted},
		{name: "allow: plain token with the zero scheme", cred: func() core.Credential { return cred(plain, "", "") }, reason: aegis.ReasonAccepted},
		{name: "allow: proof beside a Bearer token is ignored", cred: func() core.Credential { return cred(plain, core.SchemeBearer, f.proof(f.key, plain)) }, reason: aegis.ReasonAccepted},
		{name: "allow, refusing proofs with Bearer: proof beside a Bearer token", cfg: core.DPoPConfig{RefuseProofWithBearer: true},
			cred: func() core.Credential { return cred(plain, core.SchemeBearer, f.proof(f.key, plain)) }, reason: aegis.ReasonBindingMismatch},
		{name: "allow: DPoP-bound token with its proof", cred: func() core.Credential { return cred(bound, core.SchemeDPoP, f.proof(f.key, bound)) }, reason: aegis.ReasonAccepted, dpop: true},
		{name: "allow: DPoP-bound token downgraded to Bearer", cred: func() core.Credential { return cred(bound, core.SchemeBearer, "") }, reason: aegis.ReasonBindingMismatch},
		{name: "allow: DPoP-bound token as Bearer with its proof", cred: func() core.Credential { return cred(bound, core.SchemeBearer, f.proof(f.key, bound)) }, reason: aegis.ReasonBindingMismatch},
		{name: "allow: DPoP-bound token without proof", cred: func() core.Credential { return cred(bound, core.SchemeDPoP, "") }, reason: aegis.ReasonInvalidDPoPProof},
		{name: "allow: proof by another key", cred: func() core.Credential { return cred(bound, core.SchemeDPoP, f.proof(other, bound)) }, reason: aegis.ReasonInvalidDPoPProof},
		{name: "allow: proof for another token", cred: func() core.Credential { return cred(bound, core.SchemeDPoP, f.proof(f.key, plain)) }, reason: aegis.ReasonInvalidDPoPProof},
		{name: "allow: unbound token under the DPoP scheme", cred: func() core.Credential { return cred(plain, core.SchemeDPoP, f.proof(f.key, plain)) }, reason: aegis.ReasonBindingMismatch},
		{name: "allow: opaque DPoP-bound token with its proof (cnf from introspection)",
			cred: func() core.Credential { return cred(opaqueBound, core.SchemeDPoP, f.proof(f.key, opaqueBound)) }, reason: aegis.ReasonAccepted, dpop: true},
		{name: "allow: opaque DPoP-bound token downgraded to Bearer", cred: func() core.Credential { return cred(opaqueBound, core.SchemeBearer, "") }, reason: aegis.ReasonBindingMismatch},
		{name: "require: plain Bearer token", cfg: core.DPoPConfig{Policy: dpop.Require}, cred: func() core.Credential { return cred(plain, core.SchemeBearer, "") }, reason: aegis.ReasonBindingMismatch},
		{name: "require: DPoP-bound token with its proof", cfg: core.DPoPConfig{Policy: dpop.Require},
			cred: func() core.Credential { return cred(bound, core.SchemeDPoP, f.proof(f.key, bound)) }, reason: aegis.ReasonAccepted, dpop: true},
		{name: "require: unbound token under the DPoP scheme", cfg: core.DPoPConfig{Policy: dpop.Require},
			cred: func() core.Credential { return cred(plain, core.SchemeDPoP, f.proof(f.key, plain)) }, reason: aegis.ReasonBindingMismatch},
		{name: "off: plain Bearer token", cfg: core.DPoPConfig{Policy: dpop.Off}, cred: func() core.Credential { return cred(plain, core.SchemeBearer, "") }, reason: aegis.ReasonAccepted},
		{name: "off: DPoP-bound token as Bearer", cfg: core.DPoPConfig{Policy: dpop.Off}, cred: func() core.Credential { return cred(bound, core.SchemeBearer, "") }, reason: aegis.ReasonBindingMismatch},
		{name: "off: DPoP-bound token with its proof", cfg: core.DPoPConfig{Policy: dpop.Off},
			cred: func() core.Credential { return cred(bound, core.SchemeDPoP, f.proof(f.key, bound)) }, reason: aegis.ReasonBindingMismatch},
		{name: "route require over the default allow: plain Bearer token", route: dpop.Require,
			cred: func() core.Credential { return cred(plain, core.SchemeBearer, "") }, reason: aegis.ReasonBindingMismatch},
		{name: "route off over the default require: plain Bearer token", cfg: core.DPoPConfig{Policy: dpop.Require}, route: dpop.Off,
			cred: func() core.Credential { return cred(plain, core.SchemeBearer, "") }, reason: aegis.ReasonAccepted},
		{name: "unknown route policy fails closed", route: dpop.Policy("maybe"), cred: func() core.Credential { return cred(plain, core.SchemeBearer, "") }, reason: aegis.ReasonBindingMismatch},
		{name: "cnf not an object", cred: func() core.Credential { return cred(cnfNotObject, core.SchemeBearer, "") }, reason: aegis.ReasonClaimsInvalid},
		{name: "cnf.jkt not a string", cred: func() core.Credential { return cred(jktNotString, core.SchemeBearer, "") }, reason: aegis.ReasonClaimsInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.checker(t, tt.cfg)
			cr := tt.cred()
			cr.DPoP = tt.route
			v := c.Check(context.Background(), cr)
			if tt.reason == aegis.ReasonAccepted {
				require.Nil(t, v.Refusal)
				require.NotNil(t, v.Principal)
				assert.Equal(t, tt.dpop, v.Principal.DPoPBound())
				assert.False(t, v.Principal.CertificateBound())
				return
			}
			require.NotNil(t, v.Refusal)
			assert.Nil(t, v.Principal)
			assert.Equal(t, tt.reason, v.Refusal.Reason)
			assert.Equal(t, aegis.ClassInvalid, v.Refusal.Class)
			assert.NotContains(t, v.Refusal.Error(), cr.Token)
			if cr.Proof != "" {
				assert.NotContains(t, v.Refusal.Error(), cr.Proof)
			}
		})
	}
}

// TestBindingCacheHitStillNeedsItsProof: a bound token served by the
// verified-token cache skips its signature, never its proof.
func TestBindingCacheHitStillNeedsItsProof(t *testing.T) {
	f := newBindingFixture(t)
	c := f.checker(t, core.DPoPConfig{})
	bound := f.iss.DPoPBound("svc", f.key, "data:read")
	first := f.proof(f.key, bound)
	v := c.Check(context.Background(), cred(bound, core.SchemeDPoP, first))
	require.Nil(t, v.Refusal)
	assert.False(t, v.Principal.Cached())

	v = c.Check(context.Background(), cred(bound, core.SchemeDPoP, f.proof(f.key, bound)))
	require.Nil(t, v.Refusal)
	assert.True(t, v.Principal.Cached(), "the token is a cache hit")
	assert.True(t, v.Principal.DPoPBound())

	for name, cr := range map[string]core.Credential{
		"replayed proof": cred(bound, core.SchemeDPoP, first),
		"no proof":       cred(bound, core.SchemeDPoP, ""),
		"as Bearer":      cred(bound, core.SchemeBearer, ""),
	} {
		t.Run(name, func(t *testing.T) {
			v := c.Check(context.Background(), cr)
			require.NotNil(t, v.Refusal)
			assert.Contains(t, []aegis.Reason{aegis.ReasonInvalidDPoPProof, aegis.ReasonBindingMismatch}, v.Refusal.Reason)
		})
	}
}

func TestBindingReplayRefusedAcrossCheckersSharingAVerifier(t *testing.T) {
	f := newBindingFixture(t)
	shared, err := dpop.New(dpop.Config{Now: fixedClock})
	require.NoError(t, err)
	a := f.checker(t, core.DPoPConfig{Verifier: shared})
	b := f.checker(t, core.DPoPConfig{Verifier: shared})
	bound := f.iss.DPoPBound("svc", f.key)
	p := f.proof(f.key, bound)
	require.Nil(t, a.Check(context.Background(), cred(bound, core.SchemeDPoP, p)).Refusal)
	v := b.Check(context.Background(), cred(bound, core.SchemeDPoP, p))
	require.NotNil(t, v.Refusal)
	assert.ErrorIs(t, v.Refusal, dpop.ErrReplayed)
}

func TestBindingValidateRefusesBoundTokens(t *testing.T) {
	f := newBindingFixture(t)
	c := f.checker(t, core.DPoPConfig{})
	_, err := c.Validate(context.Background(), f.iss.DPoPBound("svc", f.key))
	var r *aegis.Refusal
	require.ErrorAs(t, err, &r)
	assert.Equal(t, aegis.ReasonBindingMismatch, r.Reason)
	p, err := c.Validate(context.Background(), f.iss.M2M("svc"))
	require.NoError(t, err)
	assert.NotNil(t, p)
}

// TestBindingConfirmDoesNotSpendTheProofTwice: a revocation-sensitive route
// after an admission confirms the token by introspection without verifying
// the proof again (its jti is used up); alone, Confirm verifies it.
func TestBindingConfirmDoesNotSpendTheProofTwice(t *testing.T) {
	f := newBindingFixture(t)
	c := f.checker(t, core.DPoPConfig{})
	bound := f.iss.DPoPBound("svc", f.key)
	cr := cred(bound, core.SchemeDPoP, f.proof(f.key, bound))
	v := c.Check(context.Background(), cr)
	require.Nil(t, v.Refusal)
	confirmed := c.Confirm(context.Background(), cr, v.Principal)
	require.Nil(t, confirmed.Refusal)
	assert.True(t, confirmed.Principal.DPoPBound())
	assert.Equal(t, core.MethodIntrospection, confirmed.Principal.Method)

	alone := c.Confirm(context.Background(), cred(bound, core.SchemeDPoP, f.proof(f.key, bound)), nil)
	require.Nil(t, alone.Refusal)
	assert.True(t, alone.Principal.DPoPBound())
	downgraded := c.Confirm(context.Background(), cred(bound, core.SchemeBearer, ""), nil)
	require.NotNil(t, downgraded.Refusal)
	assert.Equal(t, aegis.ReasonBindingMismatch, downgraded.Refusal.Reason)
}

func TestAuthorizeBindingAppliesALaterRoutesPolicy(t *testing.T) {
	f := newBindingFixture(t)
	c := f.checker(t, core.DPoPConfig{})
	plain := f.iss.M2M("svc")
	bound := f.iss.DPoPBound("svc", f.key)
	byBearer := c.Check(context.Background(), cred(plain, core.SchemeBearer, ""))
	require.Nil(t, byBearer.Refusal)
	byDPoP := c.Check(context.Background(), cred(bound, core.SchemeDPoP, f.proof(f.key, bound)))
	require.Nil(t, byDPoP.Refusal)

	tests := []struct {
		name   string
		p      *core.Principal
		policy dpop.Policy
		ok     bool
	}{
		{"bearer principal, route allow", byBearer.Principal, dpop.Allow, true},
		{"bearer principal, route require", byBearer.Principal, dpop.Require, false},
		{"bearer principal, route off", byBearer.Principal, dpop.Off, true},
		{"dpop principal, route require", byDPoP.Principal, dpop.Require, true},
		{"dpop principal, route off", byDPoP.Principal, dpop.Off, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := cred("", core.SchemeBearer, "")
			cr.DPoP = tt.policy
			r := c.AuthorizeBinding(context.Background(), cr, tt.p)
			if tt.ok {
				assert.Nil(t, r)
			} else {
				require.NotNil(t, r)
				assert.Equal(t, aegis.ReasonBindingMismatch, r.Reason)
			}
		})
	}
}

func TestCertificateBinding(t *testing.T) {
	f := newBindingFixture(t)
	c := f.checker(t, core.DPoPConfig{})
	mine, theirs := jwkstest.NewClientCertificate("svc").Leaf, jwkstest.NewClientCertificate("other").Leaf
	bound := f.iss.MTLSBound("svc", mine)
	tests := []struct {
		name string
		cert *x509.Certificate
		ok   bool
	}{
		{"the token's certificate", mine, true},
		{"no certificate", nil, false},
		{"another certificate", theirs, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := cred(bound, core.SchemeBearer, "")
			cr.PeerCertificate = tt.cert
			v := c.Check(context.Background(), cr)
			if tt.ok {
				require.Nil(t, v.Refusal)
				assert.True(t, v.Principal.CertificateBound())
				assert.False(t, v.Principal.DPoPBound())
				return
			}
			require.NotNil(t, v.Refusal)
			assert.Equal(t, aegis.ReasonCertificateMismatch, v.Refusal.Reason)
		})
	}
	t.Run("an unbound token needs no certificate", func(t *testing.T) {
		v := c.Check(context.Background(), cred(f.iss.M2M("svc"), core.SchemeBearer, ""))
		require.Nil(t, v.Refusal)
		assert.False(t, v.Principal.CertificateBound())
	})
}

func TestNewRefusesAnUnknownDPoPPolicy(t *testing.T) {
	f := newBindingFixture(t)
	c, err := core.New(core.Config{Validator: f.validator, DPoP: core.DPoPConfig{Policy: "sometimes"}})
	assert.Nil(t, c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Config.DPoP.Policy")
}

// TestBindingOfPrincipalsOfOwnValidators: a validator of one's own that
// remakes a Principal with NewPrincipal, from one the built-in validators
// admitted, gets its binding checked against the claims it gives; and a
// Principal remade from one that proved a key has proved nothing.
func TestBindingOfPrincipalsOfOwnValidators(t *testing.T) {
	f := newBindingFixture(t)
	jkt := f.key.Thumbprint()
	richer := core.ValidatorFunc(func(ctx context.Context, token string) (*core.Principal, error) {
		p, err := f.validator.Validate(ctx, token) // no cnf in its claims
		if err != nil {
			return nil, err
		}
		return core.NewPrincipal(*p, func(name string) (json.RawMessage, bool) {
			if name == "cnf" {
				return json.RawMessage(`{"jkt":"` + jkt + `"}`), true
			}
			return p.Claim(name)
		}), nil
	})
	c, err := core.New(core.Config{Validator: richer, Logger: quiet(), Now: fixedClock})
	require.NoError(t, err)
	plain := f.iss.M2M("svc", "data:read")
	v := c.Check(context.Background(), cred(plain, core.SchemeBearer, ""))
	require.NotNil(t, v.Refusal, "the claims it gave bind the token to a key")
	assert.Equal(t, aegis.ReasonBindingMismatch, v.Refusal.Reason)

	bound := f.iss.DPoPBound("svc", f.key, "data:read")
	var shared *core.Principal
	same := core.ValidatorFunc(func(ctx context.Context, token string) (*core.Principal, error) {
		if shared == nil {
			p, err := f.validator.Validate(ctx, token)
			if err != nil {
				return nil, err
			}
			shared = p
		}
		return shared, nil
	})
	c, err = core.New(core.Config{Validator: same, Logger: quiet(), Now: fixedClock, DPoP: core.DPoPConfig{Policy: dpop.Allow}})
	require.NoError(t, err)
	v = c.Check(context.Background(), cred(bound, core.SchemeDPoP, f.proof(f.key, bound)))
	require.Nil(t, v.Refusal)
	assert.True(t, v.Principal.DPoPBound())
	unbound := core.NewPrincipal(*shared, nil)
	assert.False(t, unbound.DPoPBound(), "NewPrincipal starts with nothing proved")
}
