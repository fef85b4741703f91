package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/bench"
)

// TestRunNoAuth runs the command for about a second against the no-auth
// stack.
func TestRunNoAuth(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run([]string{"-d", "1s", "-c", "4", "-hot", "2", "-fresh", "16", "-stacks", "no-auth"}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	t.Log("\n" + out.String())
	if !strings.Contains(out.String(), "| no-auth |") || !strings.Contains(out.String(), "| 0 |") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestRunRefusesUnboundedRuns(t *testing.T) {
	for _, args := range [][]string{{"-d", "61s"}, {"-d", "0s"}, {"-c", "0"}, {"-reuse", "1.5"}, {"-stacks", "nope", "-d", "1s", "-fresh", "1", "-hot", "1"},
		{"-mixes", "nope", "-d", "1s"}, {"-verify-d", "1ms"}, {"-verify-d", "11s"}} {
		var out, errOut bytes.Buffer
		if err := run(args, &out, &errOut); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

func TestParseMixes(t *testing.T) {
	tests := []struct {
		list    string
		want    []string // names
		fresh   []float64
		wantErr bool
	}{
		{list: "custom", want: []string{"custom"}, fresh: []float64{0.25}},
		{list: "issue", want: []string{"reuse", "mixed", "fresh"}, fresh: []float64{0, 0.05, 1}},
		{list: "fresh, reuse", want: []string{"fresh", "reuse"}, fresh: []float64{1, 0}},
		{list: "issue,custom", want: []string{"reuse", "mixed", "fresh", "custom"}, fresh: []float64{0, 0.05, 1, 0.25}},
		{list: "mixed,issue", wantErr: true},
		{list: "nope", wantErr: true},
		{list: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.list, func(t *testing.T) {
			mixes, err := parseMixes(tt.list, 0.75, 3)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			var names []string
			var fresh []float64
			for _, m := range mixes {
				names = append(names, m.name)
				fresh = append(fresh, m.fresh)
			}
			assert.Equal(t, tt.want, names)
			assert.Equal(t, tt.fresh, fresh)
		})
	}
	m, err := parseMixes("custom,mixed,fresh", 0.75, 3)
	require.NoError(t, err)
	assert.Equal(t, mix{name: "custom", alg: "RS256", fresh: 0.25, hot: 3}, m[0])
	assert.Equal(t, mix{name: "mixed", alg: "RS256", fresh: 0.05, hot: 20}, m[1])
	assert.Equal(t, mix{name: "fresh", alg: "ES256", fresh: 1, hot: 1}, m[2])
}

// TestSummarize: every ratio is taken within its round, against that
// round's ceiling and limit, then the median over the rounds is taken.
func TestSummarize(t *testing.T) {
	rps := func(xs ...float64) []bench.LoadResult {
		out := make([]bench.LoadResult, len(xs))
		for i, x := range xs {
			out[i] = bench.LoadResult{RPS: x}
		}
		return out
	}
	mr := &mixRun{
		mix: mix{name: "mixed", alg: "RS256", fresh: 0.5, hot: 2},
		// v = c in every round (2 cores, 20,000 req/s: c = 100 µs), so
		// the limit is 1 / (1 + 0.5) = 2/3, whatever the round.
		verify: []time.Duration{100 * time.Microsecond, 50 * time.Microsecond, 200 * time.Microsecond},
		targets: []*target{
			{name: "no-auth", results: rps(20000, 40000, 10000), round: []int{0, 1, 2}},
			{name: "aegis", results: rps(12000, 24000, 7000), round: []int{0, 1, 2}},
			// Skipped in round 1 (its -n was reached).
			{name: "jwtauth", results: rps(4000, 2000), round: []int{0, 2}},
		},
	}
	s := mr.summarize(2)
	assert.Equal(t, 3, s.rounds)
	assert.InDelta(t, 20000, s.ceilingRPS, 1e-9)
	assert.Equal(t, 100*time.Microsecond, s.c)
	assert.Equal(t, 100*time.Microsecond, s.v)
	assert.InDelta(t, 2.0/3, s.limit, 1e-9)
	assert.InDelta(t, 0.6, s.ofCeiling["aegis"], 1e-9) // 0.6, 0.6, 0.7
	assert.InDelta(t, 0.9, s.ofLimit["aegis"], 1e-9)
	assert.InDelta(t, 0.2, s.ofCeiling["jwtauth"], 1e-9) // 0.2, 0.2
	assert.InDelta(t, 0.3, s.ofLimit["jwtauth"], 1e-9)
	assert.InDelta(t, 1.5, s.ofLimit["no-auth"], 1e-9) // the ceiling, over a limit of 2/3

	table := limitTable([]summary{s}, []int{0, 1, 3})
	assert.Contains(t, table, "| mix | alg | f | ceiling req/s | c | v | limit | aegis / ceiling | aegis / limit | jwtauth / ceiling | jwtauth / limit |")
	assert.Contains(t, table, "| mixed | RS256 | 0.50 | 20000 | 100.0 µs | 100.0 µs | 0.67 | 0.60 | 0.90 (0.90–1.05) | 0.20 | 0.30 (0.30–0.30) |")
}

func TestSpread(t *testing.T) {
	tests := []struct {
		xs   []float64
		want string
	}{
		{nil, ""},
		{[]float64{0.9}, ""},
		{[]float64{0.9, 1.1, 0.95}, " (0.90–1.10)"},
		{[]float64{math.NaN(), 0.9, math.Inf(1), 0.8}, " (0.80–0.90)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, spread(tt.xs), "%v", tt.xs)
	}
}

// TestSummarizeWithoutCeiling: without the no-auth stack no ratio can be
// taken, and the table says so.
func TestSummarizeWithoutCeiling(t *testing.T) {
	mr := &mixRun{
		mix:     namedMixes["reuse"],
		targets: []*target{{name: "aegis", results: []bench.LoadResult{{RPS: 5000}}, round: []int{0}}},
	}
	s := mr.summarize(2)
	assert.Equal(t, 0, s.rounds)
	assert.True(t, math.IsNaN(s.ofCeiling["aegis"]))
	assert.Contains(t, limitTable([]summary{s}, []int{1}), "| reuse | RS256 | 0.00 | n/a | — | — | n/a | n/a | n/a |")
}

// TestRunMixes runs two of the mixes briefly against the no-auth
// stack and Aegis, and checks the limit table.
func TestRunMixes(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run([]string{"-d", "200ms", "-rounds", "1", "-c", "4", "-mixes", "reuse,fresh", "-fresh", "64",
		"-verify-d", "20ms", "-stacks", "no-auth,aegis"}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	t.Log("\n" + out.String())
	for _, want := range []string{"mix reuse", "mix fresh", "| reuse | RS256 | 0.00 |", "| fresh | ES256 | 1.00 |", "aegis / limit"} {
		assert.Contains(t, out.String(), want)
	}
}
