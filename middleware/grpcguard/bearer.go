package grpcguard

import (
	"context"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/dpop"
)

// Metadata keys the interceptors read.
const (
	// authorizationKey is the metadata key of the call's credentials.
	authorizationKey = "authorization"
	// dpopKey is the metadata key of the call's DPoP proof (RFC 9449 §4.1's
	// DPoP header, as gRPC spells header names: in lower case).
	dpopKey = "dpop"
)

// accessToken returns the one token the call presents in its authorization
// metadata and the scheme it came under, with the HTTP middleware's
// semantics for the Authorization header: one value, "Bearer <token>" or
// "DPoP <token>" with a case-insensitive scheme; another scheme is no
// access token at all.
func accessToken(ctx context.Context) (string, core.Scheme, *aegis.Refusal) {
	values := metadata.ValueFromIncomingContext(ctx, authorizationKey)
	switch len(values) {
	case 0:
		return "", "", errMissing
	case 1:
	default:
		return "", "", errTwoValues
	}
	scheme, rest, _ := strings.Cut(values[0], " ")
	var s core.Scheme
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		s = core.SchemeBearer
	case strings.EqualFold(scheme, "DPoP"):
		s = core.SchemeDPoP
	default:
		return "", "", errMissing
	}
	rest = strings.Trim(rest, " \t")
	switch {
	case rest == "":
		if s == core.SchemeDPoP {
			return "", s, errEmptyDPoPToken
		}
		return "", s, errEmptyToken
	case strings.IndexByte(rest, ' ') >= 0 || strings.IndexByte(rest, '\t') >= 0:
		return "", s, errSyntax
	}
	// The length and the b64token syntax are checked by the Checker.
	return rest, s, nil
}

// proof returns the call's one DPoP proof, "" when it has none. More than
// one is a refusal, as more than one DPoP header is over HTTP.
func proof(ctx context.Context) (string, *aegis.Refusal) {
	values := metadata.ValueFromIncomingContext(ctx, dpopKey)
	switch len(values) {
	case 0:
		return "", nil
	case 1:
		return values[0], nil
	default:
		return "", errTwoProofs
	}
}

// Refusals the Guard makes itself, before any token is validated: the HTTP
// middleware's, worded for metadata.
var (
	errMissing        = aegis.Refuse(aegis.ReasonTokenMissing, nil)
	errTwoValues      = malformed("The call has more than one authorization metadata value")
	errSyntax         = malformed("The authorization metadata is malformed")
	errEmptyToken     = malformed("The Bearer credentials are empty")
	errEmptyDPoPToken = malformed("The DPoP credentials are empty")
	errTwoProofs      = func() *aegis.Refusal {
		r := aegis.Refuse(aegis.ReasonInvalidDPoPProof, dpop.ErrMissing)
		r.Description = "The call has more than one dpop metadata value"
		return r
	}()
)

func malformed(description string) *aegis.Refusal {
	r := aegis.Refuse(aegis.ReasonRequestMalformed, nil)
	r.Description = description
	return r
}
