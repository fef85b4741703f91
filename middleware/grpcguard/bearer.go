package grpcguard

import (
	"context"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/olympus/aegis"
)

// authorizationKey is the metadata key of the call's credentials.
const authorizationKey = "authorization"

// bearerToken returns the one token the call presents in its authorization
// metadata, with the HTTP middleware's semantics for the Authorization
// header: one value, "Bearer <token>" with a case-insensitive scheme;
// another scheme is no bearer token at all.
func bearerToken(ctx context.Context) (string, *aegis.Refusal) {
	values := metadata.ValueFromIncomingContext(ctx, authorizationKey)
	switch len(values) {
	case 0:
		return "", errMissing
	case 1:
	default:
		return "", errTwoValues
	}
	scheme, rest, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errMissing
	}
	rest = strings.Trim(rest, " \t")
	switch {
	case rest == "":
		return "", errEmptyToken
	case strings.IndexByte(rest, ' ') >= 0 || strings.IndexByte(rest, '\t') >= 0:
		return "", errSyntax
	}
	// The length and the b64token syntax are checked by the Checker.
	return rest, nil
}

// Refusals the Guard makes itself, before any token is validated: the HTTP
// middleware's, worded for metadata.
var (
	errMissing    = aegis.Refuse(aegis.ReasonTokenMissing, nil)
	errTwoValues  = malformed("The call has more than one authorization metadata value")
	errSyntax     = malformed("The authorization metadata is malformed")
	errEmptyToken = malformed("The Bearer credentials are empty")
)

func malformed(description string) *aegis.Refusal {
	r := aegis.Refuse(aegis.ReasonRequestMalformed, nil)
	r.Description = description
	return r
}
