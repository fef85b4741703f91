package wycheproof_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/c2sp/wycheproof"
	"github.com/stretchr/testify/require"
)

// vectorFile is the part of a Wycheproof file common to every schema.
type vectorFile struct {
	Algorithm     string                     `json:"algorithm"`
	Schema        string                     `json:"schema"`
	NumberOfTests int                        `json:"numberOfTests"`
	Notes         map[string]json.RawMessage `json:"notes"`
	TestGroups    []json.RawMessage          `json:"testGroups"`
}

// loadFile reads one embedded vector file and decodes its groups into G.
func loadFile[G any](t *testing.T, name string) (vectorFile, []G) {
	t.Helper()
	data, err := fs.ReadFile(wycheproof.TestVectors, name)
	require.NoError(t, err, "Wycheproof file %s: renamed or removed upstream?", name)
	var f vectorFile
	require.NoError(t, json.Unmarshal(data, &f), name)
	require.NotEmpty(t, f.TestGroups, "%s has no test groups", name)
	groups := make([]G, len(f.TestGroups))
	for i, raw := range f.TestGroups {
		require.NoError(t, json.Unmarshal(raw, &groups[i]), "%s group %d", name, i)
	}
	return f, groups
}

// hexBytes is a byte string written in hex, as Wycheproof writes msg, sig,
// keys.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = d
	return nil
}

// vector is what every Wycheproof test case has.
type vector struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Result  string   `json:"result"` // valid, invalid or acceptable
}

func (v vector) String() string {
	return fmt.Sprintf("tcId %d (%q, flags %v, %s)", v.TcID, v.Comment, v.Flags, v.Result)
}

// tally counts one file's outcomes for its summary.
type tally struct {
	run, skipped                 int
	invalidRefused               int
	invalidAccepted              int // each one also fails the test
	validAccepted, validRefused  int
	acceptAccepted, acceptRefuse int
	refusedWhy                   map[string]int // valid or acceptable vectors refused, by reason
	acceptedWhy                  map[string]int // invalid vectors accepted on purpose, by reason
	skippedWhy                   map[string]int // vectors not run, by reason
}

func newTally() *tally {
	return &tally{refusedWhy: map[string]int{}, acceptedWhy: map[string]int{}, skippedWhy: map[string]int{}}
}

func (c *tally) skip(n int, why string) {
	c.skipped += n
	c.skippedWhy[why] += n
}

// count records one vector that was run: its result and whether Aegis
// accepted it; why is the reason a valid or acceptable vector was refused,
// or an invalid one accepted on purpose.
func (c *tally) count(v vector, accepted bool, why string) {
	c.run++
	switch {
	case v.Result == "invalid" && !accepted:
		c.invalidRefused++
	case v.Result == "invalid":
		c.invalidAccepted++
		if why != "" {
			c.acceptedWhy[why]++
		}
	case v.Result == "valid" && accepted:
		c.validAccepted++
	case v.Result == "valid":
		c.validRefused++
		c.refusedWhy[why]++
	case v.Result == "acceptable" && accepted:
		c.acceptAccepted++
	case v.Result == "acceptable":
		c.acceptRefuse++
		c.refusedWhy[why]++
	}
}

func (c *tally) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d run: %d invalid refused (%d accepted), %d valid accepted, %d valid refused, %d acceptable accepted, %d acceptable refused",
		c.run, c.invalidRefused, c.invalidAccepted, c.validAccepted, c.validRefused, c.acceptAccepted, c.acceptRefuse)
	for _, why := range slices.Sorted(maps.Keys(c.acceptedWhy)) {
		fmt.Fprintf(&b, "\n    invalid yet accepted, a named exception, %d: %s", c.acceptedWhy[why], why)
	}
	for _, why := range slices.Sorted(maps.Keys(c.refusedWhy)) {
		fmt.Fprintf(&b, "\n    refused though not invalid, %d: %s", c.refusedWhy[why], why)
	}
	if c.skipped > 0 {
		fmt.Fprintf(&b, "\n  %d not run:", c.skipped)
		for _, why := range slices.Sorted(maps.Keys(c.skippedWhy)) {
			fmt.Fprintf(&b, "\n    %d: %s", c.skippedWhy[why], why)
		}
	}
	return b.String()
}

// check fails t unless the file's counts add up: something ran, at least
// min vectors, and every vector of the file was either run or skipped for
// a stated reason.
func (c *tally) check(t *testing.T, name string, f vectorFile, min int) {
	t.Helper()
	require.Greater(t, c.run, 0, "%s: no vector run", name)
	require.GreaterOrEqual(t, c.run, min, "%s: fewer vectors run than expected", name)
	require.Equal(t, f.NumberOfTests, c.run+c.skipped, "%s: numberOfTests does not match the vectors run or skipped", name)
	require.Equal(t, c.run, c.invalidRefused+c.invalidAccepted+c.validAccepted+c.validRefused+c.acceptAccepted+c.acceptRefuse, "%s: a vector with an unknown result", name)
	t.Logf("%s: %s", name, c)
}
