package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/olympus/aegis"

	"github.com/redis/go-redis/v9"

	"github.com/olympus/aegis/ratelimit"
	"github.com/olympus/aegis/ratelimit/redisstore"
)

// A Store shared by every replica, falling back to each replica's
// memory while Redis is down. (No output: it needs a Redis.)
func Example() {
	client := redis.NewClient(&redis.Options{
		Addr: "localhost:6379",
		// Let go-redis stop at the store's Timeout by itself.
		ContextTimeoutEnabled: true,
	})
	defer client.Close()

	shared, err := redisstore.New(redisstore.Config{Client: client})
	if err != nil {
		log.Fatal(err)
	}
	store, err := ratelimit.NewFailover(ratelimit.FailoverConfig{
		Primary:  shared,
		Fallback: ratelimit.NewMemoryStore(ratelimit.MemoryConfig{}),
		Policy:   ratelimit.FailOpen,
		Logger:   slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}

	d, err := store.Allow(context.Background(), "client-id", ratelimit.Limit{PerMinute: 600})
	if err != nil {
		log.Fatal(err) // only for an invalid limit under FailOpen
	}
	if !d.Allowed {
		fmt.Printf("429, Retry-After: %.0f\n", d.RetryAfter.Seconds())
		return
	}
	fmt.Printf("pass, %d left\n", d.Remaining)
}

// Under FailClosed a Redis outage refuses requests with a hint.
func Example_failClosed() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	shared, err := redisstore.New(redisstore.Config{
		Client:  client,
		Prefix:  "myapp:ratelimit:",
		Timeout: 50 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	store, err := ratelimit.NewFailover(ratelimit.FailoverConfig{
		Primary:    shared,
		Policy:     ratelimit.FailClosed,
		RetryAfter: 10 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}

	_, err = store.Allow(context.Background(), "client-id", ratelimit.Limit{PerMinute: 60})
	var unavailable *aegis.Refusal
	if errors.As(err, &unavailable) {
		fmt.Printf("503, Retry-After: %.0f\n", unavailable.RetryAfter.Seconds())
	}
}
