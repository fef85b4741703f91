package bench

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/olympus/aegis/internal/floor"
)

// Limit is the physical limit of a token mix, as a share of the no-auth
// ceiling: what remains of the ceiling once every never-seen token's
// signature is checked at the standard library's cost on the same cores,
//
//	limit = c / (c + f·v)
//
// where c is the ceiling's CPU time per request (cores ÷ the ceiling's
// requests per second), f the share of never-seen tokens in the mix and v
// the standard library's verify time measured with every core busy
// (MeasureVerify). It is NaN when the ceiling or the cores are not
// positive, f is outside [0, 1] or v is negative.
func Limit(ceilingRPS float64, cores int, f float64, v time.Duration) float64 {
	if ceilingRPS <= 0 || cores <= 0 || f < 0 || f > 1 || v < 0 {
		return math.NaN()
	}
	c := float64(cores) / ceilingRPS // seconds of CPU per request
	return c / (c + f*v.Seconds())
}

// MeasureVerify is v of Limit: it verifies token with the standard-library
// floor (internal/floor: split, decode the signature, verify) on cores
// goroutines at once (every core busy, as under load) for about d, and
// returns the CPU time of one verification, cores × elapsed ÷
// verifications. The token must verify with pub under alg.
func MeasureVerify(ctx context.Context, alg string, pub crypto.PublicKey, token string, cores int, d time.Duration) (time.Duration, error) {
	if cores <= 0 {
		cores = runtime.GOMAXPROCS(0)
	}
	if d <= 0 || d > MaxDuration {
		return 0, fmt.Errorf("verify: duration %v outside (0, %v]", d, MaxDuration)
	}
	if !floor.Verify(alg, pub, token) {
		return 0, errors.New("verify: the token does not verify under the floor")
	}
	var n atomic.Int64
	var refused atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range cores {
		wg.Go(func() {
			var mine int64
			for ctx.Err() == nil && time.Now().Before(deadline) {
				for range 8 {
					if !floor.Verify(alg, pub, token) {
						refused.Store(true)
						return
					}
				}
				mine += 8
			}
			n.Add(mine)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if refused.Load() {
		return 0, errors.New("verify: the floor refused a token it had accepted")
	}
	if n.Load() == 0 {
		return 0, errors.New("verify: no verification completed")
	}
	return time.Duration(float64(cores) * float64(elapsed) / float64(n.Load())), nil
}

// Median is the median of xs (the mean of the middle two for an even
// count), NaN for none. NaN values are left out.
func Median(xs []float64) float64 {
	s := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
