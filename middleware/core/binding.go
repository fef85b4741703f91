package core

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/strictjson"
	"github.com/olympus/aegis/middleware/dpop"
)

// Scheme is the HTTP authentication scheme a token was presented under.
type Scheme string

const (
	// SchemeBearer is RFC 6750's Bearer (also the zero Scheme).
	SchemeBearer Scheme = "Bearer"
	// SchemeDPoP is RFC 9449's DPoP: the token with a DPoP proof.
	SchemeDPoP Scheme = "DPoP"
)

// DPoPConfig configures sender-constrained tokens (RFC 9449 DPoP; RFC 8705
// certificate-bound tokens are always checked). A token's binding is read
// from its cnf claim, in a JWT or an introspection answer alike: cnf.jkt
// binds it to a DPoP key, cnf["x5t#S256"] to a TLS client certificate.
type DPoPConfig struct {
	// Policy is the default for routes that set none (Credential.DPoP):
	// dpop.Allow (the default), dpop.Require or dpop.Off.
	Policy dpop.Policy
	// Verifier checks proofs; default dpop.New(dpop.Config{Now: Config.Now})
	// (an in-memory replay store). Share one Verifier between Checkers
	// that accept the same proofs, so that a proof used at one is refused
	// at the other.
	Verifier *dpop.Verifier
	// RefuseProofWithBearer refuses a request that carries a DPoP proof
	// beside a Bearer token (ReasonBindingMismatch) under dpop.Allow;
	// default the proof is ignored, as RFC 9449 §7.2 permits.
	RefuseProofWithBearer bool
}

// binding is a Checker's DPoP configuration, defaults applied.
type binding struct {
	verifier              *dpop.Verifier
	policy                dpop.Policy
	refuseProofWithBearer bool
}

func newBinding(cfg DPoPConfig, now func() time.Time) (binding, error) {
	b := binding{verifier: cfg.Verifier, policy: cfg.Policy, refuseProofWithBearer: cfg.RefuseProofWithBearer}
	switch b.policy {
	case dpop.PolicyDefault:
		b.policy = dpop.Allow
	case dpop.Allow, dpop.Require, dpop.Off:
	default:
		return b, fmt.Errorf("Config.DPoP.Policy %q is not dpop.Allow, dpop.Require or dpop.Off", cfg.Policy)
	}
	if b.verifier == nil {
		v, err := dpop.New(dpop.Config{Now: now})
		if err != nil {
			return b, fmt.Errorf("Config.DPoP: %w", err)
		}
		b.verifier = v
	}
	return b, nil
}

// DPoPVerifier returns the Verifier that checks the Checker's proofs, for
// transports that render its algorithms and nonces.
func (c *Checker) DPoPVerifier() *dpop.Verifier { return c.binding.verifier }

// DPoPPolicy returns the policy of a route whose own policy is p: p, or
// the Checker's default for dpop.PolicyDefault.
func (c *Checker) DPoPPolicy(p dpop.Policy) dpop.Policy {
	if p == dpop.PolicyDefault {
		return c.binding.policy
	}
	return p
}

// Principal binding flags.
const (
	boundDPoP uint8 = 1 << iota
	boundCertificate
)

// DPoPBound reports whether the request proved possession of the key the
// token is bound to with a DPoP proof.
func (p *Principal) DPoPBound() bool { return p != nil && p.binding&boundDPoP != 0 }

// CertificateBound reports whether the token is bound to the request's TLS
// client certificate (RFC 8705).
func (p *Principal) CertificateBound() bool { return p != nil && p.binding&boundCertificate != 0 }

// confirmation is a token's cnf: the key or certificate it is bound to.
type confirmation struct {
	jkt, x5t string
}

// Principal.cnf values: unknown (the zero value: read the claims), or
// known to be absent or present.
const (
	cnfAbsent uint8 = 1 + iota
	cnfPresent
)

// cnfOf tells whether claims hold a cnf claim other than null.
func cnfOf(claims claimLookup) uint8 {
	if raw, ok := claims.Raw("cnf"); ok && string(raw) != "null" {
		return cnfPresent
	}
	return cnfAbsent
}

// confirmationOf reads p's cnf claim: absent, or an object whose jkt and
// x5t#S256, when present, are strings.
func confirmationOf(p *Principal) (confirmation, *aegis.Refusal) {
	var cnf confirmation
	if p.claims == nil || p.cnf == cnfAbsent {
		return cnf, nil
	}
	raw, ok := p.claims.Raw("cnf")
	if !ok || string(raw) == "null" {
		return cnf, nil
	}
	members, err := strictjson.Object(raw, strictjson.MaxClaimsDepth-1)
	if err != nil {
		return cnf, claimRefusal("cnf", errors.New("not a JSON object"))
	}
	for _, m := range members {
		switch m.Name {
		case "jkt":
			cnf.jkt, err = strictjson.String(m.Value)
		case "x5t#S256":
			cnf.x5t, err = strictjson.String(m.Value)
		}
		if err != nil {
			return cnf, claimRefusal("cnf", fmt.Errorf("%s is not a string", m.Name))
		}
	}
	return cnf, nil
}

// mismatch is the refusal of a token presented against its binding.
func mismatch(description, detail string) *aegis.Refusal {
	r := aegis.Refuse(aegis.ReasonBindingMismatch, errors.New(detail))
	r.Description = description
	return r
}

var errCertificate = errors.New("the TLS client certificate is absent or not the token's (cnf x5t#S256)")

// bind checks that cred presents p's token as its binding demands, under
// the route's policy, and verifies the DPoP proof when there is one to
// verify: a token served by the verified-token cache skips its signature,
// never its proof. On success it marks p with what was proved.
func (c *Checker) bind(ctx context.Context, cred Credential, p *Principal) *aegis.Refusal {
	p.binding = 0 // what this request proves, whatever a validator returned
	cnf, r := confirmationOf(p)
	if r != nil {
		return r
	}
	if cnf.x5t != "" {
		if !certificateMatches(cred, cnf.x5t) {
			return aegis.Refuse(aegis.ReasonCertificateMismatch, errCertificate)
		}
		p.binding |= boundCertificate
	}
	isDPoP := cred.Scheme == SchemeDPoP
	switch c.DPoPPolicy(cred.DPoP) {
	case dpop.Off:
		switch {
		case isDPoP:
			return mismatch("DPoP is not accepted here", "DPoP scheme under policy off")
		case cnf.jkt != "":
			return mismatch("The access token is DPoP-bound and DPoP is not accepted here", "cnf.jkt under policy off")
		}
		return nil
	case dpop.Allow:
		if !isDPoP {
			switch {
			case cnf.jkt != "":
				return mismatch("The access token is DPoP-bound: present it with the DPoP scheme and a proof", "DPoP-bound token presented as Bearer")
			case cred.Proof != "" && c.binding.refuseProofWithBearer:
				return mismatch("A DPoP proof is not accepted with a Bearer token", "DPoP proof beside a Bearer token")
			}
			return nil
		}
	default: // dpop.Require, and any unknown policy
		if !isDPoP {
			return mismatch("Only DPoP-bound access tokens are accepted here", "Bearer scheme under policy require")
		}
	}
	if cnf.jkt == "" {
		return mismatch("The access token is not DPoP-bound", "DPoP scheme with a token without cnf.jkt")
	}
	var proofs []string
	if cred.Proof != "" {
		proofs = []string{cred.Proof}
	}
	if _, err := c.binding.verifier.Verify(ctx, dpop.Request{Proofs: proofs, Method: cred.Method, URL: cred.URL,
		AccessToken: cred.Token, Thumbprint: cnf.jkt}); err != nil {
		return refusalOf(err)
	}
	p.binding |= boundDPoP
	return nil
}

// rebind checks p, a Principal admitted for the same request (whose proof
// was verified then, and must not be verified again: its jti is used up),
// against the policy of a later route, and against the cnf of next, the
// same token read again (by introspection), when next is not nil.
func (c *Checker) rebind(cred Credential, p, next *Principal) *aegis.Refusal {
	if next != nil {
		cnf, r := confirmationOf(next)
		if r != nil {
			return r
		}
		if cnf.x5t != "" && !certificateMatches(cred, cnf.x5t) {
			return aegis.Refuse(aegis.ReasonCertificateMismatch, errCertificate)
		}
		if cnf.jkt != "" {
			proved, _ := confirmationOf(p) // the key p's proof was checked against
			if !p.DPoPBound() || cnf.jkt != proved.jkt {
				return mismatch("The access token is DPoP-bound: present it with the DPoP scheme and a proof", "the issuer binds the token to a key the request did not prove")
			}
		}
		next.binding = p.binding
	}
	switch c.DPoPPolicy(cred.DPoP) {
	case dpop.Allow:
		return nil
	case dpop.Off:
		if p.DPoPBound() {
			return mismatch("DPoP is not accepted here", "DPoP-bound token under policy off")
		}
		return nil
	default:
		if !p.DPoPBound() {
			return mismatch("Only DPoP-bound access tokens are accepted here", "no DPoP proof under policy require")
		}
		return nil
	}
}

// AuthorizeBinding checks p, a Principal this Checker admitted for the
// same request, against the DPoP policy of cred (a later route's, which
// may be stricter than the one p was admitted under). The proof is not
// verified again. A refusal is recorded.
func (c *Checker) AuthorizeBinding(ctx context.Context, cred Credential, p *Principal) *aegis.Refusal {
	r := c.rebind(cred, p, nil)
	if r != nil {
		c.record(ctx, cred, refusedDecision(r, p), r)
	}
	return r
}

// certificateMatches reports whether the request's client certificate is
// the one x5t names: base64url(SHA-256(DER)) (RFC 8705 §3.1).
func certificateMatches(cred Credential, x5t string) bool {
	if cred.PeerCertificate == nil {
		return false
	}
	sum := sha256.Sum256(cred.PeerCertificate.Raw)
	var enc [43]byte
	base64.RawURLEncoding.Encode(enc[:], sum[:])
	return subtle.ConstantTimeCompare(enc[:], []byte(x5t)) == 1
}
