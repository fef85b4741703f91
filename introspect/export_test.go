package introspect

// Calls returns how many introspection requests c sent.
func Calls(c *Client) int64 { return c.calls.Load() }

// CachedEntries returns how many answers c's caches hold (active and
// refused, which are kept apart).
func CachedEntries(c *Client) int { return c.cache.len() + c.denied.len() }
