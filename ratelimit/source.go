package ratelimit

import (
	"context"
	"encoding/json"
)

// Client is who a request is charged to, as the middleware knows it after
// authentication.
type Client struct {
	// ID is the OAuth2 client ID.
	ID string
	// Claim returns a claim of the client's token, for sources that read
	// limits from tokens; it may be nil.
	Claim func(name string) (json.RawMessage, bool)
}

// Source looks up a client's limit per minute. ok false means the source
// has no value for the client (absent, 0 or invalid), so the next source
// or the default applies. An error means the source could not answer.
type Source interface {
	Lookup(ctx context.Context, c Client) (perMinute int, ok bool, err error)
}
