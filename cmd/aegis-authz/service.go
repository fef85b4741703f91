package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/clientcert"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/dpop"
)

// The identity headers of an allowed request: all five on every 200,
// empty when the token has no such value (and on public rules), so that a
// gateway that copies them overwrites whatever a client sent.
const (
	HeaderSubject  = "X-Auth-Subject"
	HeaderClientID = "X-Auth-Client-Id"
	HeaderKind     = "X-Auth-Kind"
	HeaderScopes   = "X-Auth-Scopes"
	HeaderEmail    = "X-Auth-Email"
)

// IdentityHeaders lists the identity headers, in the order above.
var IdentityHeaders = []string{HeaderSubject, HeaderClientID, HeaderKind, HeaderScopes, HeaderEmail}

// The request headers of the forward-auth protocol (nginx auth_request,
// Caddy forward_auth, Traefik ForwardAuth).
const (
	HeaderForwardedURI    = "X-Forwarded-Uri"
	HeaderForwardedMethod = "X-Forwarded-Method"
)

// HealthPath answers 200 to GET when the request carries no
// X-Forwarded-Uri.
const HealthPath = "/.aegis/healthz"

// The values of -http-mode: how the HTTP decision service reads a request.
const (
	// HTTPModeAuto decides on X-Forwarded-Method and X-Forwarded-Uri when
	// the request carries X-Forwarded-Uri (forward auth), else on the
	// request itself (Envoy's HTTP ext_authz).
	HTTPModeAuto = "auto"
	// HTTPModeForwardAuth decides on X-Forwarded-Method and
	// X-Forwarded-Uri only: a request without them is refused (400).
	HTTPModeForwardAuth = "forward-auth"
	// HTTPModeEnvoy decides on the request itself (Envoy's HTTP
	// ext_authz), whatever X-Forwarded-* headers it carries.
	HTTPModeEnvoy = "envoy"
)

// The values of -default-policy.
const (
	PolicyDeny          = "deny"
	PolicyAuthenticated = "authenticated"
)

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// Guard validates tokens and renders refusals; required.
	Guard *middleware.Guard
	// Rules are the routes file's rules, the first match winning.
	Rules []Rule
	// DefaultPolicy decides unmatched requests: PolicyDeny (the default)
	// refuses them with 403, PolicyAuthenticated admits any valid token.
	DefaultPolicy string
	// HTTPMode is how ServeHTTP reads requests: HTTPModeAuto (the
	// default), HTTPModeForwardAuth or HTTPModeEnvoy. Set it to the
	// gateway's, so that no client header can switch it.
	HTTPMode string
	// Realm is the realm of WWW-Authenticate challenges; default "api",
	// as the Guard's.
	Realm string
	// Logger receives the service's own refusals (the Guard logs its
	// decisions); default slog.Default().
	Logger *slog.Logger
	// ClientCertHeader names the request header in which the gateway
	// forwards the TLS client certificate (RFC 8705 certificate-bound
	// tokens), such as "X-SSL-Client-Cert" (nginx:
	// proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert); ""
	// for none. The gateway must set it, overwriting whatever the client
	// sent. It is read only for requests made over https; a value that
	// cannot be read, or more than one, counts as no certificate.
	ClientCertHeader string
	// ClientCertFormat is how ClientCertHeader carries the certificate:
	// clientcert.EscapedPEM (the default), Base64DER or XFCC.
	ClientCertFormat clientcert.Format
}

// Service is the decision service: it decides whether a request a
// gateway forwards may pass, from its method, path and Authorization
// header, and answers over HTTP (ServeHTTP) and Envoy's ext_authz gRPC
// (Check). It is safe for concurrent use.
type Service struct {
	guard      *middleware.Guard
	rules      []compiledRule
	unmatched  http.Handler
	realm      string
	log        *slog.Logger
	authorizer authorizer
	// certHeader and certFormat: ServiceConfig.ClientCertHeader and
	// ClientCertFormat.
	certHeader string
	certFormat clientcert.Format
	httpMode   string
}

type compiledRule struct {
	Rule
	handler http.Handler
}

// ErrConfig marks a ServiceConfig that New refuses.
var ErrConfig = errors.New("invalid decision service configuration")

// NewService checks cfg and returns a Service.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Guard == nil {
		return nil, errors.Join(ErrConfig, errors.New("ServiceConfig.Guard is required"))
	}
	s := &Service{guard: cfg.Guard, realm: cfg.Realm, log: cfg.Logger, certHeader: http.CanonicalHeaderKey(cfg.ClientCertHeader)}
	format, err := clientcert.ParseFormat(string(cfg.ClientCertFormat))
	if err != nil {
		return nil, errors.Join(ErrConfig, fmt.Errorf("ServiceConfig.ClientCertFormat: %w", err))
	}
	s.certFormat = format
	switch s.httpMode = cfg.HTTPMode; s.httpMode {
	case "":
		s.httpMode = HTTPModeAuto
	case HTTPModeAuto, HTTPModeForwardAuth, HTTPModeEnvoy:
	default:
		return nil, errors.Join(ErrConfig, errors.New(`ServiceConfig.HTTPMode: want "auto", "forward-auth" or "envoy"`))
	}
	if s.realm == "" {
		s.realm = "api"
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	allowed := http.HandlerFunc(allow)
	for _, r := range cfg.Rules {
		c := compiledRule{Rule: r, handler: http.HandlerFunc(public)}
		if !r.Public {
			g := cfg.Guard
			if r.DPoP != dpop.PolicyDefault {
				g = g.WithDPoP(r.DPoP)
			}
			c.handler = g.Protect(allowed, r.Requirements...)
		}
		s.rules = append(s.rules, c)
	}
	switch cfg.DefaultPolicy {
	case "", PolicyDeny:
		s.unmatched = http.HandlerFunc(s.refuseUnmatched)
	case PolicyAuthenticated:
		s.unmatched = cfg.Guard.Protect(allowed)
	default:
		return nil, errors.Join(ErrConfig, errors.New(`ServiceConfig.DefaultPolicy: want "deny" or "authenticated"`))
	}
	s.authorizer = authorizer{s: s}
	return s, nil
}

// ServeHTTP decides a forwarded request: on X-Forwarded-Method and
// X-Forwarded-Uri when it carries X-Forwarded-Uri (forward auth), else on
// its own method and request URI (Envoy's HTTP ext_authz); with its
// Authorization and DPoP headers either way, the scheme of
// X-Forwarded-Proto (default http), the host of X-Forwarded-Host (forward
// auth only; default the request's Host) and the client certificate of
// ServiceConfig.ClientCertHeader. A malformed X-Forwarded-Proto or
// X-Forwarded-Host refuses (400) a request that presents a DPoP proof or
// a certificate, and is ignored for any other. GET /.aegis/healthz
// without X-Forwarded-Uri answers 200.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var uris []string
	if s.httpMode != HTTPModeEnvoy {
		uris = r.Header.Values(HeaderForwardedURI)
	}
	c := clientRequest{host: r.Host, authorization: r.Header.Values("Authorization"), dpop: r.Header.Values(HeaderDPoP)}
	if len(uris) == 0 {
		if r.URL.Path == HealthPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write([]byte("ok\n"))
			return
		}
		if s.httpMode == HTTPModeForwardAuth {
			s.refuseMalformed(w, r.Context(), "The request needs X-Forwarded-Method and X-Forwarded-Uri headers")
			return
		}
		c.method, c.uri = r.Method, r.RequestURI
		if c.uri == "" {
			c.uri = r.URL.RequestURI()
		}
	} else {
		methods := r.Header.Values(HeaderForwardedMethod)
		switch {
		case len(uris) > 1:
			s.refuseMalformed(w, r.Context(), "The request has more than one X-Forwarded-Uri header")
			return
		case len(methods) != 1:
			s.refuseMalformed(w, r.Context(), "The request needs exactly one X-Forwarded-Method header with X-Forwarded-Uri")
			return
		}
		c.method, c.uri = methods[0], uris[0]
	}
	// The scheme and host the client addressed matter only to a request
	// that presents a DPoP proof or a certificate: a malformed forwarded
	// value refuses such a request, and is ignored for any other.
	binding := usesBinding(c.authorization, c.dpop, s.certHeader != "" && len(r.Header[s.certHeader]) > 0)
	if len(uris) > 0 {
		host, err := forwardedHost(r.Header, r.Host)
		switch {
		case err == nil:
			c.host = host
		case binding:
			s.refuseMalformed(w, r.Context(), err.Error())
			return
		}
	}
	https, err := forwardedScheme(r.Header)
	if err != nil && binding {
		s.refuseMalformed(w, r.Context(), err.Error())
		return
	}
	c.https = https
	if https && s.certHeader != "" {
		c.cert = s.certificate(r.Header[s.certHeader])
	}
	s.decide(w, r.Context(), &c)
}

// decide answers for the client's request c, writing the answer to w: 200
// with the identity headers, or the Guard's refusal.
func (s *Service) decide(w http.ResponseWriter, ctx context.Context, c *clientRequest) {
	if !isToken(c.method) {
		s.refuseMalformed(w, ctx, "The forwarded method is not an HTTP method")
		return
	}
	u, err := parseRequestURI(c.uri)
	if err != nil {
		s.refuseMalformed(w, ctx, "The forwarded URI is malformed: "+err.Error())
		return
	}
	h := s.unmatched
	for i := range s.rules {
		if s.rules[i].Matches(c.method, u.Path) {
			h = s.rules[i].handler
			break
		}
	}
	// The Guard sees the client's request: its method and URI (the
	// query too, where it refuses access_token), host and scheme (a DPoP
	// proof's htu), Authorization and DPoP headers and TLS client
	// certificate, nothing else.
	r := c.request()
	r.URL = u
	h.ServeHTTP(errorChallengeFirst{w}, r.WithContext(ctx))
}

// errorChallengeFirst puts the WWW-Authenticate challenge that carries an
// error code first, when the Guard sends two (the Bearer and the DPoP
// challenge, RFC 9449 §7.1): gateways that pass only the first field on
// (nginx before 1.23 reads only the first into $upstream_http_*) then pass
// the one that says what is wrong. The order of challenges carries no
// meaning (RFC 9110 §11.6.1).
type errorChallengeFirst struct{ http.ResponseWriter }

func (w errorChallengeFirst) WriteHeader(status int) {
	if v := w.Header()["Www-Authenticate"]; len(v) == 2 && !strings.Contains(v[0], `error="`) && strings.Contains(v[1], `error="`) {
		v[0], v[1] = v[1], v[0]
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w errorChallengeFirst) Write(b []byte) (int, error) {
	// A handler that writes without WriteHeader answers 200: no challenge
	// to reorder.
	return w.ResponseWriter.Write(b)
}

// parseRequestURI parses an origin-form request target ("/path?query")
// whose path is clean (see cleanPath) once decoded, and has no encoded
// slash or backslash.
func parseRequestURI(uri string) (*url.URL, error) {
	if !strings.HasPrefix(uri, "/") {
		return nil, errors.New(`it does not start with "/"`)
	}
	if strings.IndexByte(uri, '#') >= 0 {
		return nil, errors.New("it holds a fragment")
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, errors.New("it is not a valid request target")
	}
	raw, _, _ := strings.Cut(uri, "?")
	if lower := strings.ToLower(raw); strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return nil, errors.New("the path holds an encoded slash or backslash")
	}
	if _, err := cleanPath(u.Path); err != nil {
		return nil, err
	}
	return u, nil
}

// allow answers 200 with the identity of the Principal the Guard admitted.
func allow(w http.ResponseWriter, r *http.Request) {
	p, _ := middleware.PrincipalFrom(r.Context())
	setIdentity(w.Header(), p)
	w.WriteHeader(http.StatusOK)
}

// public answers 200 with the identity headers empty.
func public(w http.ResponseWriter, _ *http.Request) {
	setIdentity(w.Header(), nil)
	w.WriteHeader(http.StatusOK)
}

// setIdentity sets the five identity headers, empty without p.
func setIdentity(h http.Header, p *core.Principal) {
	var subject, clientID, kind, granted, email string
	if p != nil {
		subject, clientID, kind, granted, email = p.Subject, p.ClientID, string(p.Kind), p.Scopes.String(), p.Email
	}
	h.Set("Cache-Control", "no-store")
	h[HeaderSubject] = []string{headerSafe(subject)}
	h[HeaderClientID] = []string{headerSafe(clientID)}
	h[HeaderKind] = []string{headerSafe(kind)}
	h[HeaderScopes] = []string{headerSafe(granted)}
	h[HeaderEmail] = []string{headerSafe(email)}
}

// headerSafe drops the characters a header value must not hold (control
// characters but tab): a claim could carry them.
func headerSafe(v string) string {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return strings.Map(func(r rune) rune {
				if (r < 0x20 && r != '\t') || r == 0x7f {
					return -1
				}
				return r
			}, v)
		}
	}
	return v
}

// refuseMalformed answers 400 for a request the service cannot decide
// on, as the Guard answers a malformed request, and records the refusal.
func (s *Service) refuseMalformed(w http.ResponseWriter, ctx context.Context, description string) {
	ref := aegis.Refuse(aegis.ReasonRequestMalformed, nil)
	ref.Description = description
	s.guard.Checker().Refuse(ctx, core.Credential{}, ref)
	e := middleware.ErrorFor(ref)
	if c := e.Challenge(s.realm); c != "" {
		w.Header().Set("WWW-Authenticate", c)
	}
	middleware.WriteProblem(w, nil, e)
}

// refuseUnmatched answers 403 for a request no rule matches, under the
// default policy deny. No challenge: no token would help.
func (s *Service) refuseUnmatched(w http.ResponseWriter, r *http.Request) {
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "refused: no route rule matches",
		slog.String("method", r.Method), slog.String("path", r.URL.Path))
	middleware.WriteProblem(w, r, &middleware.Error{Status: http.StatusForbidden, Description: "No route rule allows this request"})
}

// recorder is the http.ResponseWriter of a decision made for gRPC.
type recorder struct {
	header http.Header
	status int
	body   []byte
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	r.body = append(r.body, b...)
	return len(b), nil
}

// statusText is for logs and gRPC messages.
func statusText(status int) string { return strconv.Itoa(status) + " " + http.StatusText(status) }
