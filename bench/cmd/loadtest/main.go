// Command loadtest compares Aegis with its peers under load over loopback.
//
// It starts an in-process issuer (jwkstest) and a real http.Server on a
// random 127.0.0.1 port for each stack (the no-auth ceiling, Aegis with its
// verified-token cache on as by default and off, jwtauth,
// go-jwt-middleware) serving GET /data, checks that each answers 200 to a
// good token and 401 to a tampered one, then drives them one at a time,
// in -rounds interleaved rounds, each for -d in all, with -c keep-alive
// connections and the token mix of -reuse, and prints a Markdown table on
// stdout. Traffic goes to 127.0.0.1 only; every run is bounded in time (at
// most 60 s a stack) and in requests (-n a stack).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

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
	dur := fs.Duration("d", 10*time.Second, "duration of each stack's run (at most 60s)")
	reuse := fs.Float64("reuse", 0.95, "share of requests carrying one of the hot tokens; the rest carry a token never sent before")
	hotN := fs.Int("hot", 8, "number of hot tokens (one per worker client)")
	freshN := fs.Int("fresh", 0, "fresh tokens minted up front; 0 sizes the pool for 30,000 req/s")
	maxReq := fs.Int64("n", bench.DefaultMaxRequests, "most requests sent to one stack")
	rounds := fs.Int("rounds", 5, "interleaved rounds: each stack runs -d/-rounds per round")
	only := fs.String("stacks", "no-auth,aegis,aegis-nocache,jwtauth,go-jwt-middleware", "comma-separated stacks to run, in this order")
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
	}
	known := []string{"no-auth", "aegis", "aegis-nocache", "jwtauth", "go-jwt-middleware"} // bench.Stacks's order
	var order []int
	for _, name := range strings.Split(*only, ",") {
		i := slices.Index(known, strings.TrimSpace(name))
		if i < 0 {
			return fmt.Errorf("-stacks: unknown stack %q (known: %s)", name, strings.Join(known, ", "))
		}
		if slices.Contains(order, i) {
			return fmt.Errorf("-stacks: %q twice", name)
		}
		order = append(order, i)
	}
	if *freshN == 0 {
		*freshN = max(1, int(math.Ceil((1-*reuse)*dur.Seconds()*maxFreshRate)))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	iss := jwkstest.Start(jwkstest.Config{})
	defer iss.Close()
	t0 := time.Now()
	hot := bench.Mint(iss, *hotN, func(i int) string { return fmt.Sprintf("worker-%d", i+1) })
	fresh := bench.Mint(iss, *freshN, func(i int) string { return fmt.Sprintf("batch-client-%d", i%64+1) })
	fmt.Fprintf(stderr, "minted %d hot and %d fresh tokens in %v\n", len(hot), len(fresh), time.Since(t0).Round(time.Millisecond))

	stacks, err := bench.Stacks(iss)
	if err != nil {
		return err
	}
	for i, name := range known {
		if stacks[i].Name != name {
			return fmt.Errorf("stack %d is %q, want %q", i, stacks[i].Name, name)
		}
	}
	// Every stack is served and checked up front; then the rounds take
	// turns, each stack getting -d/-rounds per round, so that a change in
	// the machine's background load spreads over all stacks.
	targets := make([]*target, len(order))
	for k, i := range order {
		t, err := serve(ctx, stacks[i], hot[0])
		if err != nil {
			return fmt.Errorf("%s: %w", stacks[i].Name, err)
		}
		defer t.close()
		targets[k] = t
	}
	slice := *dur / time.Duration(*rounds)
	fmt.Fprintf(stderr, "%d stacks, %d rounds of %v each, %d connections\n", len(targets), *rounds, slice, *conc)
	for r := range *rounds {
		for k := range targets {
			t := targets[(k+r)%len(targets)] // a different stack goes first each round
			if t.sent() >= *maxReq {
				continue
			}
			runtime.GC()
			res, err := bench.RunLoad(ctx, bench.LoadConfig{
				URL:         t.url,
				Concurrency: *conc,
				Duration:    slice,
				MaxRequests: *maxReq - t.sent(),
				Reuse:       *reuse,
				Hot:         hot,
				Fresh:       fresh,
				FreshNext:   &t.freshNext,
				Seed:        uint64(r + 1),
			})
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			t.results = append(t.results, res)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		fmt.Fprintf(stderr, "round %d/%d done\n", r+1, *rounds)
	}
	var rows []bench.Row
	for _, t := range targets {
		res := bench.Merge(t.results...)
		if res.FirstError != "" {
			fmt.Fprintf(stderr, "%s: %d errors, first: %s\n", t.name, res.Errors, res.FirstError)
		}
		rows = append(rows, bench.Row{Stack: t.name, Result: res})
	}

	fmt.Fprintf(stdout, "Load over loopback: GET /data, %d keep-alive connections, %v per stack, "+
		"in %d interleaved rounds; %.0f%% of requests reuse one of %d hot tokens, the rest carry a never-sent token "+
		"(RS256, RSA-2048, Hydra-shaped); %s, GOMAXPROCS=%d, client and servers in one process.\n\n",
		*conc, *dur, *rounds, *reuse*100, len(hot), runtime.Version(), runtime.GOMAXPROCS(0))
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
	return nil
}

// target is one stack served on a loopback port.
type target struct {
	name      string
	url       string
	srv       *http.Server
	served    chan error
	freshNext atomic.Int64 // next unused fresh token, across rounds
	results   []bench.LoadResult
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
	mux := http.NewServeMux()
	mux.Handle("GET /data", s.Handler)
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
