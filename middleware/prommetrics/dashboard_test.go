package prommetrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/middleware/prommetrics"
)

// describing records the collectors registered through it.
type describing struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (d *describing) Register(c prometheus.Collector) error {
	d.collectors = append(d.collectors, c)
	return d.Registerer.Register(c)
}

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	// A metric name of the adapter's namespace in a query.
	queryMetric = regexp.MustCompile(`\baegis_[a-z_]+`)
	// A label matcher: name="value" (or !=, =~, !~) inside braces.
	queryMatcher = regexp.MustCompile(`([a-z_]+)\s*(?:=|!=|=~|!~)\s*"`)
	// A grouping: by (a, b).
	queryBy = regexp.MustCompile(`by \(([^)]*)\)`)
)

// exported maps each metric the adapter exports (histograms with their
// _bucket, _sum and _count series) to its label names.
func exported(t *testing.T) map[string][]string {
	t.Helper()
	reg := &describing{Registerer: prometheus.NewRegistry()}
	_, err := prommetrics.New(prommetrics.Config{Registerer: reg})
	require.NoError(t, err)
	out := map[string][]string{}
	for _, c := range reg.collectors {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			s := d.String()
			name := descName.FindStringSubmatch(s)
			require.NotNil(t, name, s)
			var labels []string
			if m := descLabels.FindStringSubmatch(s); m != nil && m[1] != "" {
				labels = strings.Split(m[1], ",")
			}
			out[name[1]] = labels
			if strings.HasSuffix(name[1], "_seconds") {
				out[name[1]+"_bucket"] = append(slices.Clone(labels), "le")
				out[name[1]+"_sum"], out[name[1]+"_count"] = labels, labels
			}
		}
	}
	require.NotEmpty(t, out)
	return out
}

// TestDashboard: every query of the Grafana dashboard names only metrics
// the adapter exports, and only labels those metrics have (issue 14,
// point 7).
func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile("dashboard.json")
	require.NoError(t, err)
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	require.NotEmpty(t, dash.Panels)
	metrics := exported(t)
	used := map[string]bool{}
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Targets, p.Title)
		for _, target := range p.Targets {
			names := queryMetric.FindAllString(target.Expr, -1)
			require.NotEmpty(t, names, "%s: %s", p.Title, target.Expr)
			var allowed []string
			for _, n := range names {
				labels, ok := metrics[n]
				if assert.True(t, ok, "%s: %s is not exported", p.Title, n) {
					allowed = append(allowed, labels...)
					used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] = true
				}
			}
			var labels []string
			for _, m := range queryMatcher.FindAllStringSubmatch(target.Expr, -1) {
				labels = append(labels, m[1])
			}
			for _, m := range queryBy.FindAllStringSubmatch(target.Expr, -1) {
				for _, l := range strings.Split(m[1], ",") {
					labels = append(labels, strings.TrimSpace(l))
				}
			}
			for _, l := range labels {
				assert.Contains(t, allowed, l, "%s: label %q of %s", p.Title, l, target.Expr)
			}
		}
	}
	for _, want := range []string{"aegis_decisions_total", "aegis_jwks_fetches_total", "aegis_introspection_calls_total",
		"aegis_introspection_cache_lookups_total", "aegis_ratelimit_decisions_total", "aegis_limit_lookups_total"} {
		assert.True(t, used[want], "a panel shows %s", want)
	}
}
