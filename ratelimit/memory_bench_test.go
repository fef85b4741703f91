package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/olympus/aegis/ratelimit"
)

// BenchmarkMemoryAllow is one decision for a known client.
func BenchmarkMemoryAllow(b *testing.B) {
	s := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})
	limit := ratelimit.Limit{PerMinute: 1_000_000_000 / 1000}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Allow(ctx, "nightly-data-sync", limit); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryAllowParallel is the same from every core, spread over
// 1,000 clients.
func BenchmarkMemoryAllowParallel(b *testing.B) {
	s := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})
	limit := ratelimit.Limit{PerMinute: 1_000_000}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("client-%d", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Allow(context.Background(), keys[i%len(keys)], limit); err != nil {
				b.Error(err)
			}
			i++
		}
	})
}

// BenchmarkMemoryMillionClients reports the heap a million distinct
// clients take, and what is left once their buckets have refilled.
func BenchmarkMemoryMillionClients(b *testing.B) {
	for b.Loop() {
		clk := newFakeClock()
		s := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: clk.Now})
		base := heapInUse()
		for i := range 1_000_000 {
			if _, err := s.Allow(context.Background(), fmt.Sprintf("client-%07d", i), ratelimit.Limit{PerMinute: 60}); err != nil {
				b.Fatal(err)
			}
		}
		full := heapInUse()
		clk.Advance(2 * time.Second)
		s.Sweep()
		after := heapInUse()
		b.ReportMetric(float64(int64(full)-int64(base))/(1<<20), "MiB-1M-clients")
		b.ReportMetric(float64(max(int64(after)-int64(base), 0))/(1<<20), "MiB-after-refill")
	}
}
