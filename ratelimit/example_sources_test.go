package ratelimit_test

import (
	"context"
	"fmt"

	"github.com/olympus/aegis/ratelimit"
)

// ExampleChain looks limits up in a static map first and falls back to a
// default of 60 a minute. In production a HydraSource (client metadata) and
// a ClaimSource (a token claim) would usually come before the map.
func ExampleChain() {
	static, err := ratelimit.NewStatic(map[string]int{
		"nightly-data-sync": 600,
		"dashboard":         0, // no value here: the default applies
	})
	if err != nil {
		panic(err)
	}
	limits := ratelimit.NewChain(60, static)
	unlimited := ratelimit.NewChain(0, static)

	ctx := context.Background()
	for _, id := range []string{"nightly-data-sync", "dashboard", "unknown-app"} {
		n, ok, _ := limits.Lookup(ctx, ratelimit.Client{ID: id})
		fmt.Printf("%s: %d a minute (found: %t)\n", id, n, ok)
	}
	if n, ok, _ := unlimited.Lookup(ctx, ratelimit.Client{ID: "unknown-app"}); !ok {
		fmt.Printf("unknown-app with no default: unlimited (%d, %t)\n", n, ok)
	}
	// Output:
	// nightly-data-sync: 600 a minute (found: true)
	// dashboard: 60 a minute (found: true)
	// unknown-app: 60 a minute (found: true)
	// unknown-app with no default: unlimited (0, false)
}
