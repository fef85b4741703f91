// Command loadtest compares Aegis with its peers under load over loopback.
//
// It starts an in-process issuer (jwkstest) per algorithm and, for each
// token mix (-mixes), a real http.Server on a random 127.0.0.1 port for
// each stack (the no-auth ceiling, Aegis with its verified-token cache on
// as by default and off, jwtauth, go-jwt-middleware) serving GET /data on a
// chi router, checks that each answers 200 to a good token and 401 to a
// tampered one, then drives them one at a time, in -rounds interleaved
// rounds, each for -d in all, with -c keep-alive connections, and prints a
// Markdown table per mix on stdout, then the physical limit of each mix
// (bench.Limit, with v measured in every round on every core) and every
// stack against it. Traffic goes to 127.0.0.1 only; every run is bounded in
// time (at most 60 s a stack and mix) and in requests (-n a stack and mix).
package main

import (
	"context"
	"crypto"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/olympus/aegis/bench"
	"github.com/olympus/aegis/jwks/jwkstest"
)

// maxFreshRate is the highest request rate the automatic fresh-token pool
// is sized for (2-core machine, client and server in one process; 23,000 req/s were seen).
const maxFreshRate = 30_000

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conc := fs.Int("c", 32, "concurrent connections (workers), each with one request in flight")
	dur := fs.Duration("d", 10*time.Second, "duration of each stack's run (at most 60s), per mix")
	reuse := fs.Float64("reuse", 0.95, "custom mix: share of requests carrying one of the hot tokens; the rest carry a token never sent before")
	hotN := fs.Int("hot", 8, "custom mix: number of hot tokens (one per worker client)")
	freshN := fs.Int("fresh", 0, "fresh tokens minted up front per mix; 0 sizes the pool for the mix (30,000 req/s at most)")
	maxReq := fs.Int64("n", bench.DefaultMaxRequests, "most requests sent to one stack in one mix")
	rounds := fs.Int("rounds", 5, "interleaved rounds: each stack runs -d/-rounds per round and mix")
	only := fs.String("stacks", strings.Join(stackNames, ","), "comma-separated stacks to run, in this order")
	mixList := fs.String("mixes", "custom", "comma-separated token mixes: custom (-reuse, -hot; RS256), "+
		"reuse (one RS256 token), mixed (95% reuse one of 20 RS256 tokens, 5% never seen), "+
		"fresh (every token a never-seen ES256 token); issue = reuse,mixed,fresh")
	verifyD := fs.Duration("verify-d", 400*time.Millisecond, "how long each round measures the stdlib verify time v of a mix, on every core")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load phase to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile (taken after the load phase) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *dur <= 0 || *dur > bench.MaxDuration:
		return fmt.Errorf("-d %v: must be in (0, %v]", *dur, bench.MaxDuration)
	case *conc <= 0 || *conc > bench.MaxConcurrency:
		return fmt.Errorf("-c %d: must be in [1, %d]", *conc, bench.MaxConcurrency)
	case *reuse < 0 || *reuse > 1:
		return fmt.Errorf("-reuse %v: must be in [0, 1]", *reuse)
	case *hotN < 1:
		return fmt.Errorf("-hot %d: must be at least 1", *hotN)
	case *freshN < 0:
		return fmt.Errorf("-fresh %d: must not be negative", *freshN)
	case *rounds < 1 || *dur/time.Duration(*rounds) < 100*time.Millisecond:
		return fmt.Errorf("-rounds %d: must be at least 1, with -d/-rounds at least 100ms", *rounds)
	case *maxReq < 1:
		return fmt.Errorf("-n %d: must be at least 1", *maxReq)
	case *verifyD < 10*time.Millisecond || *verifyD > 10*time.Second:
		return fmt.Errorf("-verify-d %v: must be in [10ms, 10s]", *verifyD)
	}
	var order []int
	for _, name := range strings.Split(*only, ",") {
		i := slices.Index(stackNames, strings.TrimSpace(name))
		if i < 0 {
			return fmt.Errorf("-stacks: unknown stack %q (known: %s)", name, strings.Join(stackNames, ", "))
		}
		if slices.Contains(order, i) {
			return fmt.Errorf("-stacks: %q twice", name)
		}
		order = append(order, i)
	}
	mixes, err := parseMixes(*mixList, *reuse, *hotN)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cores := runtime.GOMAXPROCS(0)

	// One issuer per algorithm; every stack of a mix trusts its issuer.
	issuers := map[string]*jwkstest.Issuer{}
	for _, m := range mixes {
		if issuers[m.alg] == nil {
			iss := jwkstest.Start(jwkstest.Config{Algorithm: m.alg})
			defer iss.Close()
			issuers[m.alg] = iss
		}
	}
	runs := make([]*mixRun, len(mixes))
	for mi, m := range mixes {
		mr, err := prepare(ctx, m, issuers[m.alg], order, *freshN, *dur, cores, stderr)
		if err != nil {
			return err
		}
		defer mr.close()
		runs[mi] = mr
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	slice := *dur / time.Duration(*rounds)
	fmt.Fprintf(stderr, "%d mixes, %d stacks, %d rounds of %v each, %d connections\n", len(runs), len(order), *rounds, slice, *conc)
	for r := range *rounds {
		for _, mr := range runs {
			if mr.mix.fresh > 0 {
				// v with every core busy, in the same round as the stacks.
				v, err := bench.MeasureVerify(ctx, mr.mix.alg, mr.pub, mr.probe, cores, *verifyD)
				if err != nil {
					return fmt.Errorf("%s: %w", mr.mix.name, err)
				}
				mr.verify = append(mr.verify, v)
			}
			for k := range mr.targets {
				t := mr.targets[(k+r)%len(mr.targets)] // a different stack goes first each round
				if t.sent() >= *maxReq {
					continue
				}
				runtime.GC()
				res, err := bench.RunLoad(ctx, bench.LoadConfig{
					URL:         t.url,
					Concurrency: *conc,
					Duration:    slice,
					MaxRequests: *maxReq - t.sent(),
					Reuse:       1 - mr.mix.fresh,
					Hot:         mr.hot,
					Fresh:       mr.freshPool,
					FreshNext:   &t.freshNext,
					Seed:        uint64(r + 1),
				})
				if err != nil {
					return fmt.Errorf("%s, %s: %w", mr.mix.name, t.name, err)
				}
				t.results = append(t.results, res)
				t.round = append(t.round, r)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
		fmt.Fprintf(stderr, "round %d/%d done\n", r+1, *rounds)
	}
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}

	var summaries []summary
	for _, mr := range runs {
		var rows []bench.Row
		for _, t := range mr.targets {
			res := bench.Merge(t.results...)
			if res.FirstError != "" {
				fmt.Fprintf(stderr, "%s, %s: %d errors, first: %s\n", mr.mix.name, t.name, res.Errors, res.FirstError)
			}
			rows = append(rows, bench.Row{Stack: t.name, Result: res})
		}
		fmt.Fprintf(stdout, "Load over loopback, mix %s: GET /data on a chi router, %d keep-alive connections, %v per stack, "+
			"in %d interleaved rounds; %s; %s, GOMAXPROCS=%d, client and servers in one process.\n\n",
			mr.mix.name, *conc, *dur, *rounds, mr.mix.describe(), runtime.Version(), cores)
		fmt.Fprint(stdout, bench.Markdown(rows))
		for _, r := range rows {
			if r.Result.Requests >= *maxReq {
				fmt.Fprintf(stdout, "\n%s: stopped at -n %d requests, before -d.\n", r.Stack, *maxReq)
			}
			if r.Result.FreshReused > 0 && r.Stack != "no-auth" {
				fmt.Fprintf(stdout, "\n%s: the fresh pool ran out; %d fresh slots reused a token (raise -fresh).\n",
					r.Stack, r.Result.FreshReused)
			}
		}
		fmt.Fprintln(stdout)
		summaries = append(summaries, mr.summarize(cores))
	}
	fmt.Fprint(stdout, limitTable(summaries, order))
	return nil
}

// stackNames are bench.Stacks's stacks, in its order.
var stackNames = []string{"no-auth", "aegis", "aegis-nocache", "jwtauth", "go-jwt-middleware"}

// mix is a token mix: the share of requests carrying a never-seen token
// (fresh), the rest one of hot tokens, all signed with alg.
type mix struct {
	name  string
	alg   string
	fresh float64
	hot   int
}

// The mixes (issue 15).
var namedMixes = map[string]mix{
	"reuse": {name: "reuse", alg: "RS256", fresh: 0, hot: 1},
	"mixed": {name: "mixed", alg: "RS256", fresh: 0.05, hot: 20},
	"fresh": {name: "fresh", alg: "ES256", fresh: 1, hot: 1},
}

func (m mix) describe() string {
	key := map[string]string{"RS256": "RS256, RSA-2048", "ES256": "ES256, P-256"}[m.alg]
	switch {
	case m.fresh == 0:
		return fmt.Sprintf("every request reuses one of %d hot tokens (%s, Hydra-shaped)", m.hot, key)
	case m.fresh == 1:
		return fmt.Sprintf("every request carries a never-sent token (%s, Hydra-shaped)", key)
	}
	return fmt.Sprintf("%.0f%% of requests reuse one of %d hot tokens, the rest carry a never-sent token (%s, Hydra-shaped)",
		(1-m.fresh)*100, m.hot, key)
}

// parseMixes reads -mixes; custom is the mix of -reuse and -hot.
func parseMixes(list string, reuse float64, hot int) ([]mix, error) {
	var out []mix
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		var add []mix
		switch name {
		case "custom":
			add = []mix{{name: "custom", alg: "RS256", fresh: 1 - reuse, hot: hot}}
		case "issue":
			add = []mix{namedMixes["reuse"], namedMixes["mixed"], namedMixes["fresh"]}
		default:
			m, ok := namedMixes[name]
			if !ok {
				return nil, fmt.Errorf("-mixes: unknown mix %q (known: custom, reuse, mixed, fresh, issue)", name)
			}
			add = []mix{m}
		}
		for _, m := range add {
			if slices.ContainsFunc(out, func(o mix) bool { return o.name == m.name }) {
				return nil, fmt.Errorf("-mixes: %q twice", m.name)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// mixRun is one mix's tokens and served stacks, and its measurements.
type mixRun struct {
	mix       mix
	pub       crypto.PublicKey
	probe     string // a token of the mix's issuer, for v
	hot       []string
	freshPool []string
	targets   []*target
	verify    []time.Duration // v, one per round
}

// prepare mints the mix's tokens and serves and checks its stacks.
func prepare(ctx context.Context, m mix, iss *jwkstest.Issuer, order []int, freshN int, dur time.Duration, cores int, stderr io.Writer) (*mixRun, error) {
	mr := &mixRun{mix: m, pub: iss.CurrentKey().Public()}
	t0 := time.Now()
	mr.hot = bench.Mint(iss, m.hot, func(i int) string { return fmt.Sprintf("worker-%d", i+1) })
	mr.probe = mr.hot[0]
	if m.fresh > 0 {
		n := freshN
		if n == 0 {
			// Enough for the fastest stack that verifies every fresh
			// token: at most 30,000 req/s, and at most one fresh token
			// per v of CPU on every core (v measured here, briefly).
			v, err := bench.MeasureVerify(ctx, m.alg, mr.pub, mr.probe, cores, 200*time.Millisecond)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.name, err)
			}
			rate := min(m.fresh*maxFreshRate, 1.25*float64(cores)/v.Seconds())
			n = max(1, int(math.Ceil(rate*dur.Seconds())))
		}
		mr.freshPool = bench.Mint(iss, n, func(i int) string { return fmt.Sprintf("batch-client-%d", i%64+1) })
	}
	fmt.Fprintf(stderr, "%s: minted %d hot and %d fresh %s tokens in %v\n", m.name, len(mr.hot), len(mr.freshPool), m.alg,
		time.Since(t0).Round(time.Millisecond))

	stacks, err := bench.Stacks(iss)
	if err != nil {
		return nil, err
	}
	for i, name := range stackNames {
		if stacks[i].Name != name {
			return nil, fmt.Errorf("stack %d is %q, want %q", i, stacks[i].Name, name)
		}
	}
	// Every stack is served and checked up front; then the rounds take
	// turns, each stack getting -d/-rounds per round, so that a change in
	// the machine's background load spreads over all stacks.
	for _, i := range order {
		t, err := serve(ctx, stacks[i], mr.hot[0])
		if err != nil {
			mr.close()
			return nil, fmt.Errorf("%s, %s: %w", m.name, stacks[i].Name, err)
		}
		mr.targets = append(mr.targets, t)
	}
	return mr, nil
}

func (mr *mixRun) close() {
	for _, t := range mr.targets {
		t.close()
	}
}

// summary is one mix's line of the limit table: medians over the rounds
// of per-round figures, each stack's taken against the no-auth ceiling of
// its own round.
type summary struct {
	mix        mix
	ceilingRPS float64              // median no-auth req/s
	c, v       time.Duration        // median ceiling CPU time per request, stdlib verify time
	limit      float64              // median per-round limit
	ofCeiling  map[string]float64   // stack → median of its req/s ÷ the round's ceiling
	ofLimit    map[string]float64   // stack → median of that ÷ the round's limit
	perRound   map[string][]float64 // stack → per-round share of the limit
	rounds     int
}

// summarize computes the mix's summary; every ratio is taken within a
// round (the ceiling, the stack and v measured minutes apart at most).
func (mr *mixRun) summarize(cores int) summary {
	s := summary{mix: mr.mix, ofCeiling: map[string]float64{}, ofLimit: map[string]float64{}, perRound: map[string][]float64{}}
	ceilings := map[int]float64{}
	for _, t := range mr.targets {
		if t.name != "no-auth" {
			continue
		}
		for k, r := range t.round {
			ceilings[r] = t.results[k].RPS
		}
	}
	vs := make([]float64, 0, len(mr.verify))
	for _, v := range mr.verify {
		vs = append(vs, float64(v))
	}
	s.rounds = len(ceilings)
	var cs, limits []float64
	limitOf := map[int]float64{}
	for r, rps := range ceilings {
		cs = append(cs, rps)
		var v time.Duration
		if r < len(mr.verify) {
			v = mr.verify[r]
		}
		limitOf[r] = bench.Limit(rps, cores, mr.mix.fresh, v)
		limits = append(limits, limitOf[r])
	}
	s.ceilingRPS = bench.Median(cs)
	if s.ceilingRPS > 0 {
		s.c = time.Duration(float64(cores) / s.ceilingRPS * float64(time.Second))
	}
	if len(vs) > 0 {
		s.v = time.Duration(bench.Median(vs))
	}
	s.limit = bench.Median(limits)
	for _, t := range mr.targets {
		var ofC, ofL []float64
		for k, r := range t.round {
			ceiling, ok := ceilings[r]
			if !ok || ceiling <= 0 {
				continue
			}
			x := t.results[k].RPS / ceiling
			ofC = append(ofC, x)
			ofL = append(ofL, x/limitOf[r])
		}
		s.perRound[t.name] = ofL
		s.ofCeiling[t.name] = bench.Median(ofC)
		s.ofLimit[t.name] = bench.Median(ofL)
	}
	return s
}

// limitTable renders the summaries: per mix the ceiling, c, v, the
// physical limit and every stack against the ceiling and the limit.
func limitTable(ss []summary, order []int) string {
	var b strings.Builder
	b.WriteString("Physical limit of each mix: limit = c / (c + f·v), c = cores ÷ the no-auth ceiling's req/s, " +
		"f = share of never-seen tokens, v = stdlib verify time (internal/floor) with every core busy, measured each round; " +
		"figures are medians over the rounds of ratios taken within a round (in brackets: the lowest and highest round).\n\n")
	b.WriteString("| mix | alg | f | ceiling req/s | c | v | limit |")
	for _, i := range order {
		if stackNames[i] != "no-auth" {
			fmt.Fprintf(&b, " %s / ceiling | %s / limit |", stackNames[i], stackNames[i])
		}
	}
	b.WriteString("\n| --- | --- | ---: | ---: | ---: | ---: | ---: |")
	for _, i := range order {
		if stackNames[i] != "no-auth" {
			b.WriteString(" ---: | ---: |")
		}
	}
	b.WriteString("\n")
	for _, s := range ss {
		fmt.Fprintf(&b, "| %s | %s | %.2f | %s | %s | %s | %s |", s.mix.name, s.mix.alg, s.mix.fresh,
			num("%.0f", s.ceilingRPS), micros(s.c), micros(s.v), num("%.2f", s.limit))
		for _, i := range order {
			if n := stackNames[i]; n != "no-auth" {
				fmt.Fprintf(&b, " %s | %s%s |", num("%.2f", s.ofCeiling[n]), num("%.2f", s.ofLimit[n]), spread(s.perRound[n]))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// spread is " (min–max)" of the per-round figures, when there are two or
// more, so that a reader sees how far the rounds agree.
func spread(xs []float64) string {
	var lo, hi float64
	n := 0
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		if n == 0 || x < lo {
			lo = x
		}
		if n == 0 || x > hi {
			hi = x
		}
		n++
	}
	if n < 2 {
		return ""
	}
	return fmt.Sprintf(" (%.2f–%.2f)", lo, hi)
}

// num formats x, or n/a when it is NaN or not positive.
func num(format string, x float64) string {
	if math.IsNaN(x) || x <= 0 {
		return "n/a"
	}
	return fmt.Sprintf(format, x)
}

func micros(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

// writeHeapProfile writes the allocation profile (every allocation since
// the start, by the default sampling rate).
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// target is one stack served on a loopback port.
type target struct {
	name      string
	url       string
	srv       *http.Server
	served    chan error
	freshNext atomic.Int64 // next unused fresh token, across rounds
	results   []bench.LoadResult
	round     []int // the round of each result
}

func (t *target) sent() int64 {
	var n int64
	for _, r := range t.results {
		n += r.Requests
	}
	return n
}

func (t *target) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.srv.Shutdown(ctx)
	<-t.served
}

// serve serves s on a random loopback port and checks it.
func serve(ctx context.Context, s bench.Stack, good string) (*target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// A chi router, as examples/server serves its API.
	mux := chi.NewRouter()
	mux.Method(http.MethodGet, "/data", s.Handler)
	t := &target{
		name:   s.Name,
		url:    "http://" + ln.Addr().String() + "/data",
		srv:    &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		served: make(chan error, 1),
	}
	go func() { t.served <- t.srv.Serve(ln) }()

	// Nobody benchmarks a refusal: a good token passes, a tampered one
	// does not (the no-auth ceiling admits anything). This also lets Aegis
	// fetch the issuer's keys before the clock starts.
	err = func() error {
		if code, err := status(ctx, t.url, good); err != nil || code != http.StatusOK {
			return fmt.Errorf("good token: status %d, %v", code, err)
		}
		if s.Name != "no-auth" {
			if code, err := status(ctx, t.url, bench.Tamper(good)); err != nil || code != http.StatusUnauthorized {
				return fmt.Errorf("tampered token: status %d, %v", code, err)
			}
		}
		return nil
	}()
	if err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

func status(ctx context.Context, url, token string) (int, error) {
	if err := bench.CheckLoopback(url); err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	tr := &http.Transport{Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: tr}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}
