package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of a load run: whatever the caller asks, a run stops by itself.
const (
	MaxDuration    = 60 * time.Second
	MaxConcurrency = 1024
	// DefaultMaxRequests bounds the requests of one run when LoadConfig
	// sets none.
	DefaultMaxRequests = 10_000_000
	requestTimeout     = 10 * time.Second
)

// LoadConfig is one closed-loop load run against one URL.
type LoadConfig struct {
	// URL is requested with GET; its host must be a loopback IP address.
	URL string
	// Concurrency is the number of workers, each with one request in
	// flight at a time; default 32.
	Concurrency int
	// Duration of the run; default 10 s, at most MaxDuration.
	Duration time.Duration
	// MaxRequests bounds the requests sent; default DefaultMaxRequests.
	MaxRequests int64
	// Reuse is the share of requests carrying one of Hot (picked at
	// random); the others carry the next unused token of Fresh.
	Reuse float64
	// Hot tokens are reused across requests (cached worker tokens).
	Hot []string
	// Fresh tokens are each sent at most once while they last; once they
	// are used up, fresh slots reuse them and FreshReused counts it.
	Fresh []string
	// FreshNext is the index of the next unused fresh token, shared by
	// successive runs against the same stack; nil starts at 0.
	FreshNext *atomic.Int64
	// Seed makes the token mix reproducible.
	Seed uint64
}

// LoadResult is what a run measured.
type LoadResult struct {
	Requests    int64         // completed requests (any status)
	Errors      int64         // transport errors and statuses other than 200
	Elapsed     time.Duration // from the first request to the last answer
	RPS         float64       // Requests per second of Elapsed
	P50, P99    time.Duration // latency of the 200 answers (request sent to body read)
	Fresh       int64         // requests that carried a never-sent token
	FreshReused int64         // fresh slots that had to reuse a token (pool used up)
	FirstError  string        // the first error seen, if any
	// Latencies of the 200 answers, sorted.
	Latencies []time.Duration
}

// Merge adds up successive runs against one stack: counts and elapsed
// times are summed, latencies pooled.
func Merge(rs ...LoadResult) LoadResult {
	var m LoadResult
	for _, r := range rs {
		m.Requests += r.Requests
		m.Errors += r.Errors
		m.Elapsed += r.Elapsed
		m.Fresh += r.Fresh
		m.FreshReused += r.FreshReused
		if m.FirstError == "" {
			m.FirstError = r.FirstError
		}
		m.Latencies = append(m.Latencies, r.Latencies...)
	}
	m.finish()
	return m
}

// finish sorts the latencies and computes the rate and percentiles.
func (r *LoadResult) finish() {
	if r.Elapsed > 0 {
		r.RPS = float64(r.Requests) / r.Elapsed.Seconds()
	}
	slices.Sort(r.Latencies)
	r.P50, r.P99 = percentile(r.Latencies, 0.50), percentile(r.Latencies, 0.99)
}

// CheckLoopback refuses any URL whose host is not a loopback IP address,
// so that load is only ever sent to this machine.
func CheckLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" {
		return fmt.Errorf("load: %q: only http:// is supported", raw)
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("load: %q: the host must be a loopback IP address", raw)
	}
	return nil
}

// RunLoad drives cfg.URL with cfg.Concurrency workers until cfg.Duration
// has passed, cfg.MaxRequests have been sent or ctx is done, whichever is
// first. Every answer's status is checked: anything but 200 is an error.
func RunLoad(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	if err := CheckLoopback(cfg.URL); err != nil {
		return LoadResult{}, err
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	if cfg.Concurrency > MaxConcurrency {
		return LoadResult{}, fmt.Errorf("load: concurrency %d above %d", cfg.Concurrency, MaxConcurrency)
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	cfg.Duration = min(cfg.Duration, MaxDuration)
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = DefaultMaxRequests
	}
	if cfg.Reuse < 0 || cfg.Reuse > 1 {
		return LoadResult{}, fmt.Errorf("load: reuse %v outside [0, 1]", cfg.Reuse)
	}
	if len(cfg.Hot) == 0 && cfg.Reuse > 0 || len(cfg.Fresh) == 0 && cfg.Reuse < 1 {
		return LoadResult{}, errors.New("load: no tokens for the mix")
	}
	// The hot tokens' header values are built once; a fresh token's when
	// it is sent (a pool sized for a whole run would otherwise be copied
	// on every run).
	hot := bearers(cfg.Hot)

	tr := &http.Transport{
		Proxy:               nil, // loopback only, never through a proxy
		MaxIdleConns:        cfg.Concurrency,
		MaxIdleConnsPerHost: cfg.Concurrency,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: requestTimeout}

	ctx, cancel := context.WithTimeout(ctx, cfg.Duration+requestTimeout)
	defer cancel()

	nextFresh := cfg.FreshNext
	if nextFresh == nil {
		nextFresh = new(atomic.Int64)
	}
	var (
		sent atomic.Int64
		mu   sync.Mutex
		res  LoadResult
		wg   sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	for w := range cfg.Concurrency {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(w)))
			var mine LoadResult
			local := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil && time.Now().Before(deadline) && sent.Add(1) <= cfg.MaxRequests {
				var auth []string
				if rng.Float64() < cfg.Reuse {
					auth = hot[rng.IntN(len(hot))]
				} else {
					i := nextFresh.Add(1) - 1
					if i >= int64(len(cfg.Fresh)) {
						mine.FreshReused++
					} else {
						mine.Fresh++
					}
					auth = []string{"Bearer " + cfg.Fresh[i%int64(len(cfg.Fresh))]}
				}
				t0 := time.Now()
				status, err := get(ctx, client, cfg.URL, auth)
				d := time.Since(t0)
				mine.Requests++
				switch {
				case err != nil:
					mine.Errors++
					if mine.FirstError == "" {
						mine.FirstError = err.Error()
					}
				case status != http.StatusOK:
					mine.Errors++
					if mine.FirstError == "" {
						mine.FirstError = fmt.Sprintf("status %d", status)
					}
				default:
					local = append(local, d)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.Requests += mine.Requests
			res.Errors += mine.Errors
			res.Fresh += mine.Fresh
			res.FreshReused += mine.FreshReused
			if res.FirstError == "" {
				res.FirstError = mine.FirstError
			}
			res.Latencies = append(res.Latencies, local...)
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.finish()
	return res, nil
}

// get sends one request and reads the whole answer, so that the
// connection is reused.
func get(ctx context.Context, client *http.Client, url string, auth []string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header["Authorization"] = auth
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	return resp.StatusCode, err
}

// bearers turns tokens into ready Authorization header values.
func bearers(tokens []string) [][]string {
	out := make([][]string, len(tokens))
	for i, t := range tokens {
		out[i] = []string{"Bearer " + t}
	}
	return out
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p*float64(len(sorted)) + 0.999999)
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Row is one line of the Markdown report.
type Row struct {
	Stack  string
	Result LoadResult
}

// Markdown renders rows as a table; the first row named "no-auth" is the
// ceiling the ratios are taken against.
func Markdown(rows []Row) string {
	var ceiling float64
	for _, r := range rows {
		if r.Stack == "no-auth" {
			ceiling = r.Result.RPS
			break
		}
	}
	var b strings.Builder
	b.WriteString("| stack | requests | req/s | p50 | p99 | errors | fresh tokens | vs no-auth |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		ratio := "n/a"
		if ceiling > 0 {
			ratio = fmt.Sprintf("%.2f×", r.Result.RPS/ceiling)
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %s | %d | %d | %s |\n",
			r.Stack, r.Result.Requests, r.Result.RPS, fmtDur(r.Result.P50), fmtDur(r.Result.P99),
			r.Result.Errors, r.Result.Fresh, ratio)
	}
	return b.String()
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}
