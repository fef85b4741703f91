package aegis

import "time"

// The events the leaf packages report, to an Observer of
// github.com/olympus/aegis/middleware/core (the one observability seam);
// jwks and introspect accept any value with the methods they call.

// KeySetFetch describes one fetch of an issuer's key set (discovery
// included).
type KeySetFetch struct {
	// Issuer is the issuer whose keys were fetched.
	Issuer string
	// URL is the address fetched (the key set's, or the issuer's when
	// discovery failed), with its user info, query values and fragment
	// redacted.
	URL string
	// Keys is how many usable keys the answer held; 0 on failure.
	Keys int
	// Duration is how long the fetch took.
	Duration time.Duration
	// Err is why it failed; nil on success. The last good keys stay in use
	// after a failure.
	Err error
}

// IntrospectionCacheLookup describes one look into the introspection
// cache, made for every token that passes the syntax check.
type IntrospectionCacheLookup struct {
	// Issuer is the issuer whose client looked.
	Issuer string
	// Hit reports an answer (active or not) served from the cache; false
	// when the endpoint must be asked (perhaps by a call already under way
	// for the same token).
	Hit bool
}

// IntrospectionCall describes one call to an introspection endpoint.
type IntrospectionCall struct {
	// Issuer is the issuer called.
	Issuer string
	// Active is the server's answer, when it gave one.
	Active bool
	// Duration is how long the call took, the wait for a free slot
	// included.
	Duration time.Duration
	// Err is why no answer could be had (server down, refused credentials,
	// a malformed answer); nil for an answer, active or not.
	Err error
}

// SharedCacheOp is what an introspection client did with the cache it
// shares with other replicas.
type SharedCacheOp string

// The uses of a shared introspection cache.
const (
	// SharedCacheGet is a lookup, made after a local miss.
	SharedCacheGet SharedCacheOp = "get"
	// SharedCacheSet stores an answer the server gave.
	SharedCacheSet SharedCacheOp = "set"
	// SharedCacheDrop forgets answers, in every replica.
	SharedCacheDrop SharedCacheOp = "drop"
)

// IntrospectionSharedCache describes one use of the cache an introspection
// client shares with other replicas (introspect.SharedCache).
type IntrospectionSharedCache struct {
	// Issuer is the issuer whose client used it.
	Issuer string
	// Op is what the client did.
	Op SharedCacheOp
	// Hit reports, for a get, that an answer was found.
	Hit bool
	// Err is why the shared cache failed; the client then goes on with
	// its local cache alone, so a failure here never refuses a token.
	Err error
}
