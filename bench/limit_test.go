package bench_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/bench"
	"github.com/olympus/aegis/jwks/jwkstest"
)

func TestLimit(t *testing.T) {
	tests := []struct {
		name    string
		ceiling float64 // req/s
		cores   int
		f       float64
		v       time.Duration
		want    float64 // NaN: undefined
	}{
		{"no never-seen token: the ceiling itself", 20000, 2, 0, 60 * time.Microsecond, 1},
		// c = 2 / 20,000 s = 100 µs; f·v = 0.05 × 100 µs = 5 µs.
		{"mixed", 20000, 2, 0.05, 100 * time.Microsecond, 100.0 / 105},
		// c = 100 µs; v = 200 µs: a third of the ceiling remains.
		{"every token never seen", 20000, 2, 1, 200 * time.Microsecond, 1.0 / 3},
		// One core: c = 1 / 10,000 s = 100 µs.
		{"one core", 10000, 1, 0.5, 100 * time.Microsecond, 100.0 / 150},
		{"free verification", 20000, 2, 1, 0, 1},
		{"no ceiling", 0, 2, 0.05, time.Microsecond, math.NaN()},
		{"no cores", 20000, 0, 0.05, time.Microsecond, math.NaN()},
		{"share above 1", 20000, 2, 1.5, time.Microsecond, math.NaN()},
		{"negative share", 20000, 2, -0.1, time.Microsecond, math.NaN()},
		{"negative v", 20000, 2, 0.5, -time.Microsecond, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bench.Limit(tt.ceiling, tt.cores, tt.f, tt.v)
			if math.IsNaN(tt.want) {
				assert.True(t, math.IsNaN(got), "got %v", got)
				return
			}
			assert.InDelta(t, tt.want, got, 1e-9)
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		want float64
	}{
		{"odd", []float64{3, 1, 2}, 2},
		{"even", []float64{4, 1, 3, 2}, 2.5},
		{"one", []float64{7}, 7},
		{"NaN left out", []float64{math.NaN(), 1, 5, math.NaN(), 3}, 3},
		{"none", nil, math.NaN()},
		{"only NaN", []float64{math.NaN()}, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bench.Median(tt.xs)
			if math.IsNaN(tt.want) {
				assert.True(t, math.IsNaN(got), "got %v", got)
				return
			}
			assert.Equal(t, tt.want, got)
		})
	}
	xs := []float64{3, 1, 2}
	bench.Median(xs)
	assert.Equal(t, []float64{3, 1, 2}, xs, "the input is not reordered")
}

func TestMeasureVerify(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: alg})
			pub := iss.CurrentKey().Public()
			token := iss.M2M("worker", "data:read")
			v, err := bench.MeasureVerify(context.Background(), alg, pub, token, 2, 50*time.Millisecond)
			require.NoError(t, err)
			// A verification takes microseconds, never more than the run.
			assert.Greater(t, v, time.Microsecond)
			assert.Less(t, v, 100*time.Millisecond)

			tests := []struct {
				name  string
				token string
				d     time.Duration
			}{
				{"bad signature", bench.Tamper(token), 50 * time.Millisecond},
				{"no duration", token, 0},
				{"too long", token, bench.MaxDuration + time.Second},
			}
			for _, tt := range tests {
				_, err := bench.MeasureVerify(context.Background(), alg, pub, tt.token, 2, tt.d)
				assert.Error(t, err, tt.name)
			}
		})
	}
}
