// Package scopes parses, normalizes and matches OAuth2 scopes.
//
// # Scope tokens
//
// A scope token is defined by RFC 6749 §3.3:
//
//	scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
//
// that is, one or more printable ASCII characters other than space, '"'
// and '\'. Every constructor in this package validates its input against
// this grammar, which guarantees that the space-joined form of a [Set] or
// [Requirement] can be placed verbatim inside a quoted-string, such as the
// scope parameter of an RFC 6750 "WWW-Authenticate: Bearer" challenge.
//
// # Sets
//
// A [Set] is an immutable, duplicate-free, order-preserving collection of
// scope tokens. [Parse] reads the space-separated "scope" string used by
// RFC 6749, RFC 7662 and RFC 9068; [FromClaim] reads a JSON claim value that
// is either such a string or an array of strings (for example the "scp" claim
// issued by Ory Hydra). The zero Set is empty and ready to use.
//
// # Matchers
//
// A [Matcher] decides whether one granted scope satisfies one required scope.
// Three matchers are provided:
//
//   - [Exact]: granted satisfies required if and only if granted == required.
//     This is the default for every [Requirement].
//
//   - [Hierarchic](sep): granted satisfies required if they are equal, or if
//     granted, split on sep, is a proper prefix of required split on sep.
//     With sep ":", "data" satisfies "data", "data:read" and "data:read:own",
//     but "data:read" does not satisfy "data", and "data" does not satisfy
//     "database". Segment-wise prefix matching only applies when both scopes
//     consist solely of non-empty segments; a scope with an empty segment
//     (such as "data:", ":data" or "data::read") matches only itself.
//
//   - [Wildcard](sep): granted satisfies required if they are equal, or if
//     both have the same number of segments and every granted segment either
//     equals the corresponding required segment or is exactly "*". A "*"
//     segment matches exactly one non-empty segment: with sep ":", "data:*"
//     satisfies "data:read" and "data:write", but not "data" nor
//     "data:read:own"; "*" alone satisfies every single-segment scope such as
//     "openid". The wildcard meaning exists only in the granted scope: a
//     required "data:*" is satisfied by a granted "data:*" (literal equality)
//     or "*:*", never by "data:read". A segment that merely contains '*'
//     (such as "da*") is literal. As with Hierarchic, a scope with an empty
//     segment matches only itself.
//
// # Requirements
//
// A [Requirement] describes the scopes a route needs: [All] of them or [Any]
// of them, compared with a Matcher chosen by [Requirement.Using]. Checking a
// requirement with [Requirement.SatisfiedBy] does not allocate.
package scopes
