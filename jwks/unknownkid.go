package jwks

import (
	"context"
	"hash/maphash"
	"time"
)

// How a Remote answers a token whose kid its keys lack. Two promises pull
// against each other: a flood of made-up kids must cost the issuer only a
// few fetches a minute, and a key the issuer publishes at any moment must
// be accepted within a second of the first genuine token signed with it,
// flood or not. A kid that a fetch could find is named by many requests
// (every client of the rotated issuer), a made-up one usually by one, so:
//
//   - When RefetchCooldown has passed since the last fetch caused by an
//     unknown kid, the kid causes one at once and the request waits for it
//     (as does every request that arrives while a fetch is under way).
//   - Within the cooldown, a kid named for the first time since the last
//     fetch began is refused at once: no fetch, no waiting goroutine.
//   - A kid named again before a fetch has looked for it earns a priority
//     fetch, at most one per kidFetchInterval; its requests wait for that
//     fetch (at most maxKidWaiters of them; more are refused at once).
//   - A kid a fetch did not find, although the fetch began after the kid
//     was named, is refused at once; each later fetch looks for it again
//     (a client stuck on a wrong kid keeps it in sight), so it costs
//     nothing more.
//   - While the issuer is failing, only the cooldown paces fetches, and an
//     unknown kid gets keys_unavailable.
//
// Kids are remembered by hash in Bloom filters of fixed size, so memory
// does not grow with a flood. A false positive lets a made-up kid count as
// named twice, which the interval still bounds, or has a new kid refused
// until the next fetch: at the sizes below, a chance of 1.5e-6 when 1,000
// kids were named between two fetches, 1.3e-3 at 10,000.
const (
	// kidFetchInterval is the least time between the start of a priority
	// fetch and that of the fetch before it caused by an unknown kid (or
	// RefetchCooldown, if shorter).
	kidFetchInterval = time.Second
	// maxKidWaiters bounds the requests waiting for a kid fetch.
	maxKidWaiters = 1024
	// kidFilterBits and kidProbes size each Bloom filter (32 KiB) for the
	// 1,000 kids a flood of 100 a second names in a cooldown.
	kidFilterBits = 1 << 18
	kidProbes     = 3
	// kidFilterFull is how many kids a filter takes before its answers
	// stop being trusted to say "already looked for" (a false-positive
	// rate near 1 %): beyond it, looked answers false, so that a flood
	// cannot make every new kid look already checked. Priority fetches
	// stay capped at one a second.
	kidFilterFull = 20000
)

// kidFilter is a Bloom filter of kid hashes and how many were added.
type kidFilter struct {
	bits [kidFilterBits / 64]uint64
	n    int
}

func (f *kidFilter) add(h uint64) {
	for i := range kidProbes {
		b := kidProbe(h, i)
		f.bits[b/64] |= 1 << (b % 64)
	}
	f.n++
}

func (f *kidFilter) has(h uint64) bool {
	if f == nil {
		return false
	}
	for i := range kidProbes {
		b := kidProbe(h, i)
		if f.bits[b/64]&(1<<(b%64)) == 0 {
			return false
		}
	}
	return true
}

func (f *kidFilter) merge(g *kidFilter) {
	for i := range f.bits {
		f.bits[i] |= g.bits[i]
	}
	f.n += g.n
}

// kidProbe is the i-th bit of h, by double hashing.
func kidProbe(h uint64, i int) uint64 {
	return (h + uint64(i)*(h>>32|1)) % kidFilterBits
}

// kidSightings remembers the unknown kids named, relative to the fetches
// of the key set. Its filters are allocated when first needed.
type kidSightings struct {
	seed maphash.Seed
	// seen holds the kids named since the last fetch began; pending those
	// named before the fetch under way began; checked those named before
	// the last successful fetch began, so looked for by it.
	seen, pending, checked *kidFilter
	spare                  *kidFilter
}

func (s *kidSightings) hash(kid string) uint64 { return maphash.String(s.seed, kid) }

// note records that a request named the kid.
func (s *kidSightings) note(h uint64) {
	if s.seen == nil {
		s.seen = s.alloc()
	}
	s.seen.add(h)
}

// named reports whether the kid was named since before the last
// successful fetch began.
func (s *kidSightings) named(h uint64) bool { return s.seen.has(h) || s.pending.has(h) }

// looked reports whether the last successful fetch began after the kid was
// named, so that it would have found the kid had it been published.
func (s *kidSightings) looked(h uint64) bool {
	return s.checked != nil && s.checked.n <= kidFilterFull && s.checked.has(h)
}

// fetchBegins is called as a fetch begins: the kids named so far are the
// ones it looks for.
func (s *kidSightings) fetchBegins() {
	s.putBack()
	s.pending, s.seen = s.seen, nil
}

// fetchEnds is called as a fetch ends. A fetch that failed looked for
// nothing: its kids count as named since, to be looked for by the next.
func (s *kidSightings) fetchEnds(ok bool) {
	if ok {
		s.free(s.checked)
		s.checked, s.pending = s.pending, nil
	}
	s.putBack()
}

// putBack moves the pending kids back to seen.
func (s *kidSightings) putBack() {
	switch {
	case s.pending == nil:
	case s.seen == nil:
		s.seen = s.pending
	default:
		s.seen.merge(s.pending)
		s.free(s.pending)
	}
	s.pending = nil
}

func (s *kidSightings) alloc() *kidFilter {
	if f := s.spare; f != nil {
		s.spare = nil
		*f = kidFilter{}
		return f
	}
	return new(kidFilter)
}

func (s *kidSightings) free(f *kidFilter) {
	if f != nil {
		s.spare = f
	}
}

// kidFetch is a fetch caused by an unknown kid, scheduled or under way.
// Its fields are guarded by the Remote's mu.
type kidFetch struct {
	due     time.Time
	started bool
	woken   bool
	wake    chan struct{} // closed to start it before it is due
	done    chan struct{} // closed when it has ended
}

// now makes f start at once.
func (f *kidFetch) now() {
	if !f.woken {
		f.woken = true
		close(f.wake)
	}
}

// lookupUnknown looks kid up after the keys held lacked it, following the
// policy above.
func (r *Remote) lookupUnknown(ctx context.Context, kid string) ([]Key, error) {
	h := r.kids.hash(kid)
	r.mu.Lock()
	wait := r.decideUnknown(ctx, h)
	r.mu.Unlock()
	if wait != nil {
		if r.kidWaiters.Add(1) <= maxKidWaiters {
			select {
			case <-wait:
			case <-ctx.Done():
			}
		}
		r.kidWaiters.Add(-1)
	}
	keys := r.snap.Load().set.Lookup(kid)
	if len(keys) == 0 {
		// While the key set cannot be fetched, an unknown kid may be the
		// issuer's new key: that is the issuer's trouble, not the token's.
		if err := r.unavailable(); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// decideUnknown records that a request named the unknown kid hashed h and
// returns the fetch it should wait for, or nil to refuse it at once. r.mu
// is held.
func (r *Remote) decideUnknown(ctx context.Context, h uint64) <-chan struct{} {
	now := r.cfg.Now()
	cooled := r.lastForced.IsZero() || now.Sub(r.lastForced) >= r.cfg.RefetchCooldown
	// A kid named before, that no fetch has looked for since.
	again := r.kids.named(h) && !r.kids.looked(h)
	r.kids.note(h)
	if f := r.kidFetch; f != nil {
		switch {
		case f.started || again:
			return f.done
		case cooled:
			r.lastForced = now
			f.now()
			return f.done
		}
		return nil
	}
	switch {
	case cooled:
		r.lastForced = now
		return r.scheduleKidFetch(ctx, now)
	case again && r.lastFailure.IsZero():
		interval := min(kidFetchInterval, r.cfg.RefetchCooldown)
		return r.scheduleKidFetch(ctx, maxTime(now, r.lastKidFetch.Add(interval)))
	}
	return nil
}

// scheduleKidFetch starts a kid fetch due at the given time. r.mu is held.
func (r *Remote) scheduleKidFetch(ctx context.Context, due time.Time) <-chan struct{} {
	f := &kidFetch{due: due, wake: make(chan struct{}), done: make(chan struct{})}
	r.kidFetch = f
	go r.runKidFetch(context.WithoutCancel(ctx), f)
	return f.done
}

// runKidFetch waits until f is due, then fetches the key set: a fetch that
// began before f started (a background refresh, say) may predate the
// kid's key, so it does not count.
func (r *Remote) runKidFetch(ctx context.Context, f *kidFetch) {
	defer close(f.done)
	if d := f.due.Sub(r.cfg.Now()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-f.wake:
			t.Stop()
		}
	}
	r.mu.Lock()
	f.started = true
	r.lastKidFetch = r.cfg.Now()
	begun := r.fetchesBegun
	r.mu.Unlock()
	for range 2 {
		if s, err := r.fetchShared(ctx); err != nil || s.seq > begun {
			break
		}
	}
	r.mu.Lock()
	r.kidFetch = nil
	r.mu.Unlock()
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
