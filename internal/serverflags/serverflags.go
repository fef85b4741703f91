// Package serverflags is the validation configuration that Aegis's
// deployable programs share (examples/server and cmd/aegis-authz): the
// flags -issuer, -audience, -jwks-url, -mode, -introspection-*, -clients-*,
// -redis-url, -default-rate-limit, -rate-limit-failure, -metrics-addr,
// -log-level and -allow-insecure-http, each also read from its AEGIS_*
// variable, and what they build: the Guard's middleware.Config, with its
// Redis client, shared introspection cache, rate limits and Prometheus
// metrics server. With -redis-url, the replicas also share their DPoP
// replay store and, with -dpop-nonce, their nonce secret.
//
// It is a module of its own so that go-redis and Prometheus stay out of
// the root module.
package serverflags

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/olympus/aegis/internal/issuerhttp"
	"github.com/olympus/aegis/internal/serverflags/flagenv"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/introspect/rediscache"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/middleware/dpop/redisreplay"
	"github.com/olympus/aegis/middleware/prommetrics"
	"github.com/olympus/aegis/middleware/resource"
	"github.com/olympus/aegis/ratelimit"
	"github.com/olympus/aegis/ratelimit/redisstore"
)

// EnvPrefix prefixes every flag's environment variable: AEGIS_ISSUER for
// -issuer.
const EnvPrefix = "AEGIS_"

// Options are the shared flags' values.
type Options struct {
	Issuer, Audience, JWKSURL, LogLevel string
	// Resource is the API's resource identifier (RFC 8707, RFC 9728).
	Resource    string
	MetricsAddr string

	Mode                                 string
	IntrospectionURL, IntrospectionAuth  string
	IntrospectionID, IntrospectionSecret string
	IntrospectionCacheTTL                time.Duration
	// IntrospectionCache is CacheLocal or CacheShared once Check has run.
	IntrospectionCache string

	AllowInsecureHTTP bool

	ClientsURL, RedisURL, RateLimitFailure string
	DefaultRateLimit                       int
	ClientsCacheTTL                        time.Duration

	// DPoP is the DPoP policy (RFC 9449): allow, require or off.
	DPoP string
	// DPoPNonce demands server-provided nonces in DPoP proofs.
	DPoPNonce bool
}

// The values of -mode.
const (
	ModeJWT        = "jwt"
	ModeIntrospect = "introspect"
	ModeHybrid     = "hybrid"
)

// The values of -introspection-cache.
const (
	CacheLocal  = "local"
	CacheShared = "shared"
)

// Register defines the shared flags on fs, each storing into o.
func (o *Options) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.Issuer, "issuer", "", "issuer identifier: the exact iss of accepted tokens (required)")
	fs.StringVar(&o.Audience, "audience", "", "audience every token must carry in aud; optional, but INSECURE when empty: with no audience check, a token minted for any other API of the issuer is accepted here (a warning is logged at startup)")
	fs.StringVar(&o.Resource, "resource", "", "the API's resource identifier (RFC 8707), an https URL (http on loopback): every 401 and 403 challenge then names its RFC 9728 metadata (resource_metadata), and it is the audience when -audience is not given")
	fs.StringVar(&o.JWKSURL, "jwks-url", "", "the issuer's JWK Set URL (default: discovered from the issuer)")
	fs.BoolVar(&o.AllowInsecureHTTP, "allow-insecure-http", false, "permit http:// issuer, key set, introspection and clients URLs on hosts other than loopback (a container network's http://hydra:4444); tokens and keys then travel unprotected")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log level: debug (every decision), info, warn or error")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", "", "address to serve Prometheus metrics on, at /metrics (default: none)")
	fs.StringVar(&o.Mode, "mode", "jwt", "validation: jwt (local), introspect (RFC 7662) or hybrid (JWTs locally, opaque tokens by introspection)")
	fs.StringVar(&o.IntrospectionURL, "introspection-url", "", "introspection endpoint (default: discovered; Hydra: {admin}/admin/oauth2/introspect)")
	fs.StringVar(&o.IntrospectionAuth, "introspection-auth", "", "client authentication at the endpoint: basic, post or none (default: basic with a client ID, else none)")
	fs.StringVar(&o.IntrospectionID, "introspection-client-id", "", "client ID for the introspection endpoint")
	fs.StringVar(&o.IntrospectionSecret, "introspection-client-secret", "", "client secret for the introspection endpoint (prefer AEGIS_INTROSPECTION_CLIENT_SECRET)")
	fs.DurationVar(&o.IntrospectionCacheTTL, "introspection-cache-ttl", introspect.DefaultCacheTTL, "longest an active answer is cached, never past the token's exp; 0 stops caching active answers (inactive ones are still kept 10s)")
	fs.StringVar(&o.IntrospectionCache, "introspection-cache", "", "where introspection answers are cached: local (each replica its own) or shared (through -redis-url, so replicas introspect a token once between them); default shared with -redis-url, else local")
	fs.StringVar(&o.ClientsURL, "clients-url", "", "Hydra admin base URL: each client's limit is its metadata.rate_limit_per_minute")
	fs.DurationVar(&o.ClientsCacheTTL, "clients-cache-ttl", ratelimit.DefaultHydraTTL, "how long a client's limit is cached")
	fs.StringVar(&o.RedisURL, "redis-url", "", "Redis URL (redis://host:port/db) to share rate limits, introspection answers, used DPoP proofs and the DPoP nonce secret across replicas (default: in memory)")
	fs.IntVar(&o.DefaultRateLimit, "default-rate-limit", 0, "requests per minute for clients with no limit of their own (0: unlimited)")
	fs.StringVar(&o.RateLimitFailure, "rate-limit-failure", "open", "when Redis fails: open (decide in memory) or closed (503)")
	fs.StringVar(&o.DPoP, "dpop", string(dpop.Allow), "DPoP-bound tokens (RFC 9449): allow (bound tokens need a proof, plain Bearer tokens pass), require (only DPoP) or off (bound tokens refused)")
	fs.BoolVar(&o.DPoPNonce, "dpop-nonce", false, "demand server nonces in DPoP proofs (RFC 9449 §8): a proof without the current nonce gets 401 use_dpop_nonce and a DPoP-Nonce header; the nonce rotates every 5 minutes; replicas accept each other's nonces only with -redis-url (the secret they derive from is kept there), else each replica's nonces are its own")
}

// Parse parses args with fs, whose flags include o's (see Register), then
// sets the flags not given from their AEGIS_* variables, refuses stray
// arguments, and checks o. A -h gives flag.ErrHelp.
func (o *Options) Parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return flagenv.Explain(fs, err)
	}
	if err := flagenv.Apply(fs, EnvPrefix, getenv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return o.Check()
}

// Check checks the options' values and settles IntrospectionCache's
// default.
func (o *Options) Check() error {
	if o.Issuer == "" {
		return errors.New("-issuer (or AEGIS_ISSUER) is required")
	}
	switch o.Mode {
	case ModeJWT, ModeIntrospect, ModeHybrid:
	default:
		return fmt.Errorf("-mode %q: want jwt, introspect or hybrid", o.Mode)
	}
	if _, ok := authMethods[o.IntrospectionAuth]; !ok {
		return fmt.Errorf("-introspection-auth %q: want basic, post or none", o.IntrospectionAuth)
	}
	if o.IntrospectionCacheTTL < 0 {
		return errors.New("-introspection-cache-ttl must not be negative")
	}
	switch o.IntrospectionCache {
	case "":
		o.IntrospectionCache = CacheLocal
		if o.RedisURL != "" {
			o.IntrospectionCache = CacheShared
		}
	case CacheLocal:
	case CacheShared:
		if o.RedisURL == "" {
			return errors.New("-introspection-cache shared needs -redis-url")
		}
	default:
		return fmt.Errorf("-introspection-cache %q: want local or shared", o.IntrospectionCache)
	}
	if o.Resource != "" {
		if _, err := resource.WellKnownURL(o.Resource); err != nil {
			return fmt.Errorf("-resource: %w", err)
		}
	}
	if o.DefaultRateLimit < 0 {
		return errors.New("-default-rate-limit must not be negative")
	}
	if o.ClientsCacheTTL <= 0 {
		return errors.New("-clients-cache-ttl must be positive")
	}
	if !o.AllowInsecureHTTP {
		for _, f := range []struct{ flag, url string }{{"-issuer", o.Issuer}, {"-jwks-url", o.JWKSURL},
			{"-introspection-url", o.IntrospectionURL}, {"-clients-url", o.ClientsURL}} {
			if f.url != "" && errors.Is(issuerhttp.CheckURL(f.url, false), issuerhttp.ErrInsecureHTTP) {
				return fmt.Errorf("%s %q uses http on a host other than loopback: pass -allow-insecure-http (or AEGIS_ALLOW_INSECURE_HTTP=true) to permit it",
					f.flag, issuerhttp.Redact(f.url))
			}
		}
	}
	if _, ok := failurePolicies[o.RateLimitFailure]; !ok {
		return fmt.Errorf("-rate-limit-failure %q: want open or closed", o.RateLimitFailure)
	}
	if o.DPoP == "" {
		o.DPoP = string(dpop.Allow)
	}
	if _, err := dpop.ParsePolicy(o.DPoP); err != nil {
		return fmt.Errorf("-dpop %q: want allow, require or off", o.DPoP)
	}
	if o.DPoPNonce && o.DPoP == string(dpop.Off) {
		return errors.New("-dpop-nonce needs -dpop allow or require")
	}
	return nil
}

var authMethods = map[string]introspect.AuthMethod{
	"":      "",
	"basic": introspect.AuthBasic,
	"post":  introspect.AuthPost,
	"none":  introspect.AuthNone,
}

var failurePolicies = map[string]ratelimit.FailurePolicy{"open": ratelimit.FailOpen, "closed": ratelimit.FailClosed}

// Logger returns the text logger -log-level asks for, writing to w.
func (o Options) Logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.LogLevel)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", o.LogLevel)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
}

// RateLimit builds the rate limiting the options ask for; nil when none.
// rdb is the -redis-url client, nil without one.
func (o Options) RateLimit(log *slog.Logger, rdb *redis.Client) (*middleware.RateLimitConfig, error) {
	if o.ClientsURL == "" && o.DefaultRateLimit == 0 {
		return nil, nil
	}
	rl := &middleware.RateLimitConfig{Default: o.DefaultRateLimit}
	if o.ClientsURL != "" {
		src, err := ratelimit.NewHydraSource(ratelimit.HydraConfig{AdminURL: o.ClientsURL, TTL: o.ClientsCacheTTL, Logger: log,
			AllowInsecureHTTP: o.AllowInsecureHTTP})
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
			Primary: store, Fallback: memory, Policy: failurePolicies[o.RateLimitFailure], Logger: log,
		})
		if err != nil {
			return nil, err
		}
	}
	return rl, nil
}

// Config turns the options into the Guard's configuration: a validator
// composed for the mode. shared is the introspection cache the replicas
// share, nil for none.
func (o Options) Config(log *slog.Logger, shared introspect.SharedCache) (middleware.Config, error) {
	if o.AllowInsecureHTTP {
		log.Warn("-allow-insecure-http: http:// URLs beyond loopback are accepted; tokens and keys travel unprotected")
	}
	if o.Audience == "" && o.Resource != "" {
		o.Audience = o.Resource // RFC 8707: tokens for this resource name it in aud
	}
	anyAudience := o.Audience == ""
	if anyAudience {
		log.Warn("no -audience given: tokens for any audience are accepted")
	}
	cfg := middleware.Config{Logger: log, Resource: o.Resource}
	cfg.DPoP.Policy = dpop.Policy(o.DPoP)
	if o.DPoPNonce {
		v, err := dpop.New(dpop.Config{Nonce: &dpop.NonceConfig{}})
		if err != nil {
			return cfg, err
		}
		cfg.DPoP.Verifier = v
	}
	var jwt core.Validator
	if o.Mode != ModeIntrospect {
		v, err := core.NewJWT(core.JWTConfig{Issuer: o.Issuer, Audience: o.Audience, AnyAudience: anyAudience,
			JWKS: jwks.Config{URL: o.JWKSURL, Logger: log, AllowInsecureHTTP: o.AllowInsecureHTTP}})
		if err != nil {
			return cfg, err
		}
		jwt = core.Cached(v, core.CacheConfig{})
	}
	if o.Mode == ModeJWT {
		cfg.Validator = jwt
		return cfg, nil
	}
	ic := introspect.Config{
		Issuer:       o.Issuer,
		Audience:     o.Audience,
		AnyAudience:  anyAudience,
		Endpoint:     o.IntrospectionURL,
		Auth:         authMethods[o.IntrospectionAuth],
		ClientID:     o.IntrospectionID,
		ClientSecret: o.IntrospectionSecret,
		Cache:        introspect.CacheConfig{TTL: o.IntrospectionCacheTTL},
		Logger:       log,
		Shared:       shared,

		AllowInsecureHTTP: o.AllowInsecureHTTP,
	}
	if o.IntrospectionCacheTTL == 0 {
		ic.Cache.TTL = -1
	}
	intro, err := core.NewIntrospection(ic)
	if err != nil {
		return cfg, err
	}
	if o.Mode == ModeIntrospect {
		// JWT-shaped tokens are introspected too, once their iss is
		// known to be the issuer's: a foreign one costs no call.
		jwt = core.ByIssuer(map[string]core.Validator{o.Issuer: intro})
	}
	cfg.Validator = core.Hybrid(jwt, intro)
	return cfg, nil
}

// Stack is what Build makes of the options: the Guard's configuration and
// the resources behind it (the Redis client, the shared introspection
// cache, the metrics server). Close releases them.
type Stack struct {
	// Config configures the Guard: pass it to middleware.New, changed as
	// the program needs (its Realm, say).
	Config middleware.Config

	log     *slog.Logger
	metrics *http.Server
	closers []func()
}

// Build makes the Stack: the -redis-url client, the shared introspection
// cache, the validator, the rate limits and, with -metrics-addr, the
// Prometheus observer and its server (started by ServeMetrics). On error
// nothing is left open.
func (o Options) Build(log *slog.Logger) (*Stack, error) {
	s := &Stack{log: log}
	if err := s.build(o); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Stack) build(o Options) error {
	var rdb *redis.Client
	if o.RedisURL != "" {
		opts, err := redis.ParseURL(o.RedisURL)
		if err != nil {
			return fmt.Errorf("-redis-url: %w", err)
		}
		opts.ContextTimeoutEnabled = true
		rdb = redis.NewClient(opts)
		s.closers = append(s.closers, func() { _ = rdb.Close() })
	}
	var shared introspect.SharedCache
	if o.IntrospectionCache == CacheShared && o.Mode != ModeJWT {
		cache, err := rediscache.New(rediscache.Config{Client: rdb, Logger: s.log})
		if err != nil {
			return err
		}
		s.closers = append(s.closers, func() { _ = cache.Close() })
		shared = cache
	}
	cfg, err := o.Config(s.log, shared)
	if err != nil {
		return err
	}
	if rdb != nil && cfg.DPoP.Policy != dpop.Off {
		if cfg.DPoP.Verifier, err = o.sharedDPoP(rdb); err != nil {
			return err
		}
	}
	if cfg.RateLimit, err = o.RateLimit(s.log, rdb); err != nil {
		return err
	}
	if o.MetricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		if cfg.Observer, err = prommetrics.New(prommetrics.Config{Registerer: reg}); err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}))
		s.metrics = &http.Server{Addr: o.MetricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second,
			IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	}
	s.Config = cfg
	return nil
}

// nonceSecretTimeout bounds reading (or first storing) the DPoP nonce
// secret in Redis at startup.
const nonceSecretTimeout = 5 * time.Second

// sharedDPoP is the DPoP Verifier of replicas that share rdb. Its replay
// store is in Redis, so a proof used at one replica is refused at every
// other (when Redis cannot answer, proofs get 503, never an unchecked
// admission). With -dpop-nonce, its nonce secret is the one stored in
// Redis (redisreplay.Store.NonceSecret), so replicas accept each other's
// nonces; when Redis cannot give it at startup, startup fails rather than
// run with nonces the other replicas refuse.
func (o Options) sharedDPoP(rdb *redis.Client) (*dpop.Verifier, error) {
	store, err := redisreplay.New(redisreplay.Config{Client: rdb})
	if err != nil {
		return nil, err
	}
	cfg := dpop.Config{Replay: store}
	if o.DPoPNonce {
		ctx, cancel := context.WithTimeout(context.Background(), nonceSecretTimeout)
		defer cancel()
		secret, err := store.NonceSecret(ctx)
		if err != nil {
			return nil, fmt.Errorf("-dpop-nonce with -redis-url: %w", err)
		}
		cfg.Nonce = &dpop.NonceConfig{Secret: secret}
	}
	return dpop.New(cfg)
}

// ServeMetrics starts serving /metrics on -metrics-addr, when given, and
// logs its address; Close stops it.
func (s *Stack) ServeMetrics() error {
	if s.metrics == nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.metrics.Addr)
	if err != nil {
		return fmt.Errorf("-metrics-addr: %w", err)
	}
	go func() {
		if err := s.metrics.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics server stopped", "error", err)
		}
	}()
	metrics := s.metrics
	s.closers = append(s.closers, func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = metrics.Shutdown(shutdown)
	})
	s.log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return nil
}

// Close stops the metrics server and closes the shared cache and the
// Redis client, in the reverse order of their making.
func (s *Stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}
