// Command server is an example API protected by Aegis: the contract other
// tools drive, so its flags and routes are stable.
//
// Usage:
//
//	go run ./examples/server -issuer http://127.0.0.1:4444 -audience https://api.test
//
// Every flag can also be given as an environment variable
// AEGIS_<FLAG_IN_UPPER_SNAKE> (AEGIS_ISSUER, AEGIS_JWKS_URL, ...); a flag on
// the command line wins.
//
// Validation: -mode jwt (the default) checks JWTs locally; introspect asks
// the issuer about every token (RFC 7662); hybrid checks JWTs locally and
// introspects opaque tokens. For Hydra, set -introspection-url to
// {admin}/admin/oauth2/introspect with -introspection-auth none.
//
// Rate limits: -clients-url points at Hydra's admin API, whose client
// metadata.rate_limit_per_minute sets each client's limit; -default-rate-limit
// applies to the others; -redis-url shares the counts across replicas.
//
// Introspection at fleet scale: with -redis-url, the replicas also share
// their introspection answers (stored under each token's SHA-256), so a
// token is introspected once for all of them; -introspection-cache local
// keeps each replica's answers to itself.
//
// Metrics: -metrics-addr serves Prometheus metrics at /metrics on a
// listener of its own (decisions by outcome, reason and kind; key-set
// fetches; introspection; rate limits; Go runtime and process metrics).
//
// Routes: GET /healthz (public), GET /data (data:read), POST /data
// (data:write), GET /whoami (any valid token).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/olympus/aegis/examples/internal/flagenv"
	"github.com/olympus/aegis/examples/server/api"
	"github.com/olympus/aegis/internal/issuerhttp"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/introspect/rediscache"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/prommetrics"
	"github.com/olympus/aegis/ratelimit"
	"github.com/olympus/aegis/ratelimit/redisstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "server:", err)
	}
	os.Exit(flagenv.ExitCode(err, 2))
}

type options struct {
	addr, issuer, audience, jwksURL, logLevel string
	metricsAddr                               string

	mode                                 string
	introspectionURL, introspectionAuth  string
	introspectionID, introspectionSecret string
	introspectionCacheTTL                time.Duration
	introspectionCache                   string

	allowInsecureHTTP bool

	clientsURL, redisURL, rateLimitFailure string
	defaultRateLimit                       int
	clientsCacheTTL                        time.Duration
}

// parseFlags reads flags, then AEGIS_* variables for the flags not given.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&o.issuer, "issuer", "", "issuer identifier: the exact iss of accepted tokens (required)")
	fs.StringVar(&o.audience, "audience", "", "audience every token must carry in aud; optional, but INSECURE when empty: with no audience check, a token minted for any other API of the issuer is accepted here (a warning is logged at startup)")
	fs.StringVar(&o.jwksURL, "jwks-url", "", "the issuer's JWK Set URL (default: discovered from the issuer)")
	fs.BoolVar(&o.allowInsecureHTTP, "allow-insecure-http", false, "permit http:// issuer, key set, introspection and clients URLs on hosts other than loopback (a container network's http://hydra:4444); tokens and keys then travel unprotected")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug (every decision), info, warn or error")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "address to serve Prometheus metrics on, at /metrics (default: none)")
	fs.StringVar(&o.mode, "mode", "jwt", "validation: jwt (local), introspect (RFC 7662) or hybrid (JWTs locally, opaque tokens by introspection)")
	fs.StringVar(&o.introspectionURL, "introspection-url", "", "introspection endpoint (default: discovered; Hydra: {admin}/admin/oauth2/introspect)")
	fs.StringVar(&o.introspectionAuth, "introspection-auth", "", "client authentication at the endpoint: basic, post or none (default: basic with a client ID, else none)")
	fs.StringVar(&o.introspectionID, "introspection-client-id", "", "client ID for the introspection endpoint")
	fs.StringVar(&o.introspectionSecret, "introspection-client-secret", "", "client secret for the introspection endpoint (prefer AEGIS_INTROSPECTION_CLIENT_SECRET)")
	fs.DurationVar(&o.introspectionCacheTTL, "introspection-cache-ttl", introspect.DefaultCacheTTL, "longest an active answer is cached, never past the token's exp; 0 stops caching active answers (inactive ones are still kept 10s)")
	fs.StringVar(&o.introspectionCache, "introspection-cache", "", "where introspection answers are cached: local (each replica its own) or shared (through -redis-url, so replicas introspect a token once between them); default shared with -redis-url, else local")
	fs.StringVar(&o.clientsURL, "clients-url", "", "Hydra admin base URL: each client's limit is its metadata.rate_limit_per_minute")
	fs.DurationVar(&o.clientsCacheTTL, "clients-cache-ttl", ratelimit.DefaultHydraTTL, "how long a client's limit is cached")
	fs.StringVar(&o.redisURL, "redis-url", "", "Redis URL (redis://host:port/db) to share rate limits and introspection answers across replicas (default: in memory)")
	fs.IntVar(&o.defaultRateLimit, "default-rate-limit", 0, "requests per minute for clients with no limit of their own (0: unlimited)")
	fs.StringVar(&o.rateLimitFailure, "rate-limit-failure", "open", "when Redis fails: open (decide in memory) or closed (503)")
	flagenv.SetUsage(fs, "AEGIS_", "an example API (GET /healthz, GET and POST /data, GET /whoami) guarded by Aegis",
		"server -issuer http://127.0.0.1:4444 -audience https://api.test -mode hybrid -introspection-url http://127.0.0.1:4445/admin/oauth2/introspect -introspection-auth none -clients-url http://127.0.0.1:4445")
	if err := fs.Parse(args); err != nil {
		return o, flagenv.Explain(fs, err)
	}
	if err := flagenv.Apply(fs, "AEGIS_", getenv); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.issuer == "" {
		return o, errors.New("-issuer (or AEGIS_ISSUER) is required")
	}
	switch o.mode {
	case modeJWT, modeIntrospect, modeHybrid:
	default:
		return o, fmt.Errorf("-mode %q: want jwt, introspect or hybrid", o.mode)
	}
	if _, ok := authMethods[o.introspectionAuth]; !ok {
		return o, fmt.Errorf("-introspection-auth %q: want basic, post or none", o.introspectionAuth)
	}
	if o.introspectionCacheTTL < 0 {
		return o, errors.New("-introspection-cache-ttl must not be negative")
	}
	switch o.introspectionCache {
	case "":
		o.introspectionCache = cacheLocal
		if o.redisURL != "" {
			o.introspectionCache = cacheShared
		}
	case cacheLocal:
	case cacheShared:
		if o.redisURL == "" {
			return o, errors.New("-introspection-cache shared needs -redis-url")
		}
	default:
		return o, fmt.Errorf("-introspection-cache %q: want local or shared", o.introspectionCache)
	}
	if o.defaultRateLimit < 0 {
		return o, errors.New("-default-rate-limit must not be negative")
	}
	if o.clientsCacheTTL <= 0 {
		return o, errors.New("-clients-cache-ttl must be positive")
	}
	if !o.allowInsecureHTTP {
		for _, f := range []struct{ flag, url string }{{"-issuer", o.issuer}, {"-jwks-url", o.jwksURL},
			{"-introspection-url", o.introspectionURL}, {"-clients-url", o.clientsURL}} {
			if f.url != "" && errors.Is(issuerhttp.CheckURL(f.url, false), issuerhttp.ErrInsecureHTTP) {
				return o, fmt.Errorf("%s %q uses http on a host other than loopback: pass -allow-insecure-http (or AEGIS_ALLOW_INSECURE_HTTP=true) to permit it",
					f.flag, issuerhttp.Redact(f.url))
			}
		}
	}
	if _, ok := failurePolicies[o.rateLimitFailure]; !ok {
		return o, fmt.Errorf("-rate-limit-failure %q: want open or closed", o.rateLimitFailure)
	}
	return o, nil
}

var authMethods = map[string]introspect.AuthMethod{
	"":      "",
	"basic": introspect.AuthBasic,
	"post":  introspect.AuthPost,
	"none":  introspect.AuthNone,
}

// The values of -introspection-cache.
const (
	cacheLocal  = "local"
	cacheShared = "shared"
)

var failurePolicies = map[string]ratelimit.FailurePolicy{"open": ratelimit.FailOpen, "closed": ratelimit.FailClosed}

// rateLimit builds the rate limiting the options ask for; nil when none.
// rdb is the -redis-url client, nil without one.
func (o options) rateLimit(log *slog.Logger, rdb *redis.Client) (*middleware.RateLimitConfig, error) {
	if o.clientsURL == "" && o.defaultRateLimit == 0 {
		return nil, nil
	}
	rl := &middleware.RateLimitConfig{Default: o.defaultRateLimit}
	if o.clientsURL != "" {
		src, err := ratelimit.NewHydraSource(ratelimit.HydraConfig{AdminURL: o.clientsURL, TTL: o.clientsCacheTTL, Logger: log,
			AllowInsecureHTTP: o.allowInsecureHTTP})
		if err != nil {
			return nil, fmt.Errorf("-clients-url: %w", err)
		}
		rl.Limits = src
	}
	memory := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})
	rl.Store = memory
	if rdb != nil {
		store, err := redisstore.New(redisstore.Config{Client: rdb})
		if err != nil {
			return nil, err
		}
		rl.Store, err = ratelimit.NewFailover(ratelimit.FailoverConfig{
			Primary: store, Fallback: memory, Policy: failurePolicies[o.rateLimitFailure], Logger: log,
		})
		if err != nil {
			return nil, err
		}
	}
	return rl, nil
}

// The values of -mode.
const (
	modeJWT        = "jwt"
	modeIntrospect = "introspect"
	modeHybrid     = "hybrid"
)

// config turns the options into the Guard's configuration: a validator
// composed for the mode. shared is the introspection cache the replicas
// share, nil for none.
func (o options) config(log *slog.Logger, shared introspect.SharedCache) (middleware.Config, error) {
	if o.allowInsecureHTTP {
		log.Warn("-allow-insecure-http: http:// URLs beyond loopback are accepted; tokens and keys travel unprotected")
	}
	anyAudience := o.audience == ""
	if anyAudience {
		log.Warn("no -audience given: tokens for any audience are accepted")
	}
	cfg := middleware.Config{Logger: log}
	var jwt core.Validator
	if o.mode != modeIntrospect {
		v, err := core.NewJWT(core.JWTConfig{Issuer: o.issuer, Audience: o.audience, AnyAudience: anyAudience,
			JWKS: jwks.Config{URL: o.jwksURL, Logger: log, AllowInsecureHTTP: o.allowInsecureHTTP}})
		if err != nil {
			return cfg, err
		}
		jwt = core.Cached(v, core.CacheConfig{})
	}
	if o.mode == modeJWT {
		cfg.Validator = jwt
		return cfg, nil
	}
	ic := introspect.Config{
		Issuer:       o.issuer,
		Audience:     o.audience,
		AnyAudience:  anyAudience,
		Endpoint:     o.introspectionURL,
		Auth:         authMethods[o.introspectionAuth],
		ClientID:     o.introspectionID,
		ClientSecret: o.introspectionSecret,
		Cache:        introspect.CacheConfig{TTL: o.introspectionCacheTTL},
		Logger:       log,
		Shared:       shared,

		AllowInsecureHTTP: o.allowInsecureHTTP,
	}
	if o.introspectionCacheTTL == 0 {
		ic.Cache.TTL = -1
	}
	intro, err := core.NewIntrospection(ic)
	if err != nil {
		return cfg, err
	}
	if o.mode == modeIntrospect {
		// JWT-shaped tokens are introspected too, once their iss is
		// known to be the issuer's: a foreign one costs no call.
		jwt = core.ByIssuer(map[string]core.Validator{o.issuer: intro})
	}
	cfg.Validator = core.Hybrid(jwt, intro)
	return cfg, nil
}

// run serves until ctx ends. ready, when set, gets the listening address.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(addr string)) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("-log-level %q: want debug, info, warn or error", o.logLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	var rdb *redis.Client
	if o.redisURL != "" {
		opts, err := redis.ParseURL(o.redisURL)
		if err != nil {
			return fmt.Errorf("-redis-url: %w", err)
		}
		opts.ContextTimeoutEnabled = true
		rdb = redis.NewClient(opts)
		defer rdb.Close()
	}
	var shared introspect.SharedCache
	if o.introspectionCache == cacheShared && o.mode != modeJWT {
		cache, err := rediscache.New(rediscache.Config{Client: rdb, Logger: log})
		if err != nil {
			return err
		}
		defer cache.Close()
		shared = cache
	}
	cfg, err := o.config(log, shared)
	if err != nil {
		return err
	}
	if cfg.RateLimit, err = o.rateLimit(log, rdb); err != nil {
		return err
	}
	var metrics *http.Server
	if o.metricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		if cfg.Observer, err = prommetrics.New(prommetrics.Config{Registerer: reg}); err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
		metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second,
			IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	}
	guard, err := middleware.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	if metrics != nil {
		mln, err := net.Listen("tcp", o.metricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("-metrics-addr: %w", err)
		}
		go func() {
			if err := metrics.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server stopped", "error", err)
			}
		}()
		defer func() {
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = metrics.Shutdown(shutdown)
		}()
		log.Info("serving metrics", "addr", mln.Addr().String(), "path", "/metrics")
	}
	srv := &http.Server{
		Handler:           api.NewRouter(guard),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "issuer", o.issuer, "audience", o.audience, "mode", o.mode, "introspection_cache", o.introspectionCache)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log.Info("shutting down")
	return srv.Shutdown(shutdown)
}
