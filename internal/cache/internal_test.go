package cache

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// checkShard verifies a shard's structure: both queues well linked, every
// queued node in the index under its key, the counts right.
func checkShard[V any](t *testing.T, s *shard[V]) {
	t.Helper()
	seen := 0
	for _, q := range []struct {
		l     *list
		queue uint8
	}{{&s.small, inSmall}, {&s.main, inMain}} {
		n, prev := 0, int32(none)
		for i := q.l.head; i != none; i = s.nodes[i].next {
			require.Equal(t, q.queue, s.nodes[i].queue)
			require.Equal(t, prev, s.nodes[i].prev)
			require.Equal(t, i, s.find(s.nodes[i].key, s.nodes[i].hash))
			prev = i
			n++
		}
		require.Equal(t, prev, q.l.tail)
		require.Equal(t, q.l.n, n)
		seen += n
	}
	chained := 0
	for h, i := range s.index {
		for ; i != none; i = s.nodes[i].same {
			require.Equal(t, h, s.nodes[i].hash)
			require.NotEqual(t, free, s.nodes[i].queue)
			chained++
		}
	}
	require.Equal(t, seen, chained)
	nFree := 0
	for i := s.free; i != none; i = s.nodes[i].next {
		require.Equal(t, free, s.nodes[i].queue)
		nFree++
	}
	require.Equal(t, len(s.nodes), seen+nFree)
}

func checkCache[V any](t *testing.T, c *Cache[V]) {
	t.Helper()
	total := 0
	for i := range c.shards {
		checkShard(t, &c.shards[i])
		total += c.shards[i].small.n + c.shards[i].main.n
	}
	require.Equal(t, c.Len(), total)
}

// TestStructureStaysSound drives a cache through every operation and
// checks its queues after each batch.
func TestStructureStaysSound(t *testing.T) {
	c := New[int](Config{MaxEntries: 300, Shards: 2})
	for round := range 50 {
		now := t0.Add(time.Duration(round) * time.Second)
		for i := range 200 {
			k := strconv.Itoa((round*137 + i*31) % 900)
			switch i % 7 {
			case 0:
				c.Delete(k)
			case 1:
				c.Update(k, now, func(v int, _ bool) (int, time.Time, bool) { return v + 1, now.Add(3 * time.Second), v < 4 })
			case 2, 3:
				c.Get(k, now)
			default:
				c.Set(k, i, now.Add(time.Duration(i%5)*time.Second))
			}
		}
		if round%10 == 9 {
			c.DeleteFunc(func(_ string, v int) bool { return v%2 == 0 })
		}
		checkCache(t, c)
		require.LessOrEqual(t, c.Len(), 300)
	}
}

// TestCompactsWhenMostlyEmpty: once most entries are gone, the slab and
// map are rebuilt small, keeping the survivors and their queue order.
func TestCompactsWhenMostlyEmpty(t *testing.T) {
	c := New[int](Config{MaxEntries: 100_000, Shards: 1})
	for i := range 20_000 {
		exp := t0.Add(time.Second)
		if i%100 == 0 {
			exp = t0.Add(time.Hour)
		}
		c.Set(strconv.Itoa(i), i, exp)
	}
	s := &c.shards[0]
	before := cap(s.nodes)
	var order []string
	for i := s.small.tail; i != none; i = s.nodes[i].prev {
		if s.nodes[i].value%100 == 0 {
			order = append(order, s.nodes[i].key)
		}
	}
	assert.Equal(t, 19_800, c.DeleteExpired(t0.Add(time.Minute)))
	assert.Less(t, cap(s.nodes), before/4, "the slab was rebuilt smaller")
	checkCache(t, c)
	var after []string
	for i := s.small.tail; i != none; i = s.nodes[i].prev {
		after = append(after, s.nodes[i].key)
	}
	assert.Equal(t, order, after, "queue order is kept")
	for i := 0; i < 20_000; i += 100 {
		v, ok := c.Get(strconv.Itoa(i), t0.Add(time.Minute))
		require.True(t, ok)
		require.Equal(t, i, v)
	}
}

// TestFullShardlessKeyTakesRoomElsewhere: when the cache is full and a key
// falls in a shard holding nothing, an entry of another shard makes room.
func TestFullShardlessKeyTakesRoomElsewhere(t *testing.T) {
	c := New[int](Config{MaxEntries: 128, Shards: 2})
	require.Len(t, c.shards, 2)
	var in0, in1 []string
	for i := 0; len(in0) < 128 || len(in1) < 1; i++ {
		k := strconv.Itoa(i)
		if c.shardOf(k) == &c.shards[0] {
			in0 = append(in0, k)
		} else {
			in1 = append(in1, k)
		}
	}
	for _, k := range in0[:128] {
		c.Set(k, 0, time.Time{})
	}
	require.Equal(t, 128, c.shards[0].small.n+c.shards[0].main.n)
	c.Set(in1[0], 1, time.Time{})
	assert.Equal(t, 128, c.Len())
	assert.Equal(t, 127, c.shards[0].small.n+c.shards[0].main.n)
	v, ok := c.Get(in1[0], t0)
	assert.True(t, ok)
	assert.Equal(t, 1, v)
	checkCache(t, c)
}

// TestHashCollisions: keys whose hashes are equal (forced here) share an
// index slot and are each found, removed and compacted correctly.
func TestHashCollisions(t *testing.T) {
	c := New[int](Config{MaxEntries: 10_000, Shards: 1})
	s := &c.shards[0]
	const h = 0xdeadbeef
	keys := []string{"a", "b", "c", "d", "e"}
	for i, k := range keys {
		s.insert(k, h, i, expiryNanos(time.Time{}))
	}
	s.insert("other", h+1, 99, expiryNanos(time.Time{}))
	checkShard(t, s)
	require.Len(t, s.index, 2)
	for i, k := range keys {
		j := s.find(k, h)
		require.NotEqual(t, int32(none), j, k)
		assert.Equal(t, i, s.nodes[j].value)
	}
	assert.Equal(t, int32(none), s.find("absent", h))
	assert.Equal(t, int32(none), s.find("a", h+1), "the hash alone does not match")

	for _, k := range []string{"c", "e", "a"} { // middle, first in chain, last
		s.remove(s.find(k, h))
		checkShard(t, s)
		assert.Equal(t, int32(none), s.find(k, h))
	}
	for _, k := range []string{"b", "d"} {
		assert.NotEqual(t, int32(none), s.find(k, h), k)
	}
	s.compact()
	checkShard(t, s)
	for _, k := range []string{"b", "d"} {
		assert.NotEqual(t, int32(none), s.find(k, h), k)
	}
	s.remove(s.find("b", h))
	s.remove(s.find("d", h))
	checkShard(t, s)
	require.Len(t, s.index, 1, "only other's hash is left")
}
