package mcpguard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/middleware/resource"
	"github.com/olympus/aegis/scopes"
)

// DefaultMaxBodyBytes bounds the JSON-RPC body read to find tool calls: the
// SDK's own default limit (mcp.DefaultMaxRequestBodyBytes).
const DefaultMaxBodyBytes = mcp.DefaultMaxRequestBodyBytes

// ExtraPrincipal is the key of the Aegis Principal (*core.Principal) in
// auth.TokenInfo.Extra.
const ExtraPrincipal = "aegis.principal"

// Config configures a Guard.
type Config struct {
	// Guard configures token validation, as for any Aegis HTTP Guard:
	// Issuer (and Audience, which defaults to Resource) or Validator,
	// RateLimit, Logger, Observer and so on. Resource is required: it is
	// the MCP endpoint's URL (https://mcp.example.com/mcp), the audience
	// of its tokens (RFC 8707) and the subject of its metadata (RFC 9728).
	// Realm defaults to "mcp". Bearer.AllowQuery and Bearer.AllowFormBody
	// must stay off: MCP takes tokens from the Authorization header only
	// (MCP 2025-11-25, Authorization, Token Requirements).
	Guard middleware.Config
	// Tools maps tool names to what a tools/call of that tool needs: every
	// requirement listed. A tool listed with none needs only a valid token.
	Tools map[string][]scopes.Requirement
	// DefaultTool is what tools that Tools does not list need; none (the
	// default) lets any valid token call them.
	DefaultTool []scopes.Requirement
	// Require is what every request to the endpoint needs (initialize,
	// tools/list, every call); none: any valid token.
	Require []scopes.Requirement
	// Metadata is the resource's RFC 9728 document. Resource defaults to
	// Guard.Resource (and must equal it when set), AuthorizationServers to
	// Guard.Issuer (required when Guard.Issuer is empty), and
	// BearerMethodsSupported to ["header"], and, unless Guard.DPoP.Policy
	// is dpop.Off, DPoPSigningAlgValuesSupported to the algorithms DPoP
	// proofs may use (with DPoPBoundAccessTokensRequired under
	// dpop.Require); the scopes of Tools, DefaultTool and Require are added
	// to ScopesSupported.
	Metadata resource.Metadata
	// MaxBodyBytes bounds the POST body read to find tool calls; default
	// DefaultMaxBodyBytes. A larger body cannot be checked and gets 413:
	// keep it no larger than the SDK handler's MaxRequestBodyBytes.
	MaxBodyBytes int64
}

// Guard protects an MCP endpoint: token validation and challenges for
// every request, a scope check for each tools/call, and the resource's
// metadata. It is safe for concurrent use.
type Guard struct {
	http         *middleware.Guard
	checker      *core.Checker
	tools        map[string][]scopes.Requirement
	defaultTool  []scopes.Requirement
	require      []scopes.Requirement
	checksTools  bool
	realm        string
	metadataURL  string
	metadataPath string
	metadata     resource.Metadata
	metaHandler  http.Handler
	maxBody      int64
	logger       *slog.Logger
}

var errConfig = errors.New("aegis: invalid mcpguard.Config")

// New checks cfg and returns a Guard. It makes no network request. Every
// problem with cfg is reported at once.
func New(cfg Config) (*Guard, error) {
	var errs []error
	gc := cfg.Guard
	if gc.Resource == "" {
		errs = append(errs, errors.New("Config.Guard.Resource is required: the MCP endpoint's URL (RFC 9728)"))
	}
	if gc.Bearer.AllowQuery || gc.Bearer.AllowFormBody {
		errs = append(errs, errors.New("Config.Guard.Bearer: MCP takes access tokens from the Authorization header only: leave AllowQuery and AllowFormBody off"))
	}
	for name, reqs := range cfg.Tools {
		errs = append(errs, checkReqs(fmt.Sprintf("Config.Tools[%q]", name), reqs)...)
	}
	errs = append(errs, checkReqs("Config.DefaultTool", cfg.DefaultTool)...)
	errs = append(errs, checkReqs("Config.Require", cfg.Require)...)
	if cfg.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("Config.MaxBodyBytes must not be negative"))
	}
	if gc.Realm == "" {
		gc.Realm = "mcp"
	}
	meta := cfg.Metadata
	switch {
	case meta.Resource == "":
		meta.Resource = gc.Resource
	case meta.Resource != gc.Resource:
		errs = append(errs, fmt.Errorf("Config.Metadata.Resource %q must equal Config.Guard.Resource %q", meta.Resource, gc.Resource))
	}
	if len(meta.AuthorizationServers) == 0 {
		if gc.Issuer == "" {
			errs = append(errs, errors.New("Config.Metadata.AuthorizationServers is required when Config.Guard.Issuer is not set"))
		} else {
			meta.AuthorizationServers = []string{gc.Issuer}
		}
	}
	if len(meta.BearerMethodsSupported) == 0 {
		meta.BearerMethodsSupported = []string{"header"}
	}
	meta.ScopesSupported = supported(meta.ScopesSupported, cfg)

	hg, err := middleware.New(gc)
	if err != nil {
		errs = append(errs, err)
	} else if policy := hg.Checker().DPoPPolicy(dpop.PolicyDefault); policy != dpop.Off {
		if len(meta.DPoPSigningAlgValuesSupported) == 0 {
			meta.DPoPSigningAlgValuesSupported = hg.Checker().DPoPVerifier().Algorithms()
		}
		meta.DPoPBoundAccessTokensRequired = meta.DPoPBoundAccessTokensRequired || policy == dpop.Require
	}
	var metaHandler http.Handler
	var metaURL, metaPath string
	if gc.Resource != "" {
		if metaHandler, err = resource.Handler(meta); err != nil {
			errs = append(errs, fmt.Errorf("Config.Metadata: %w", err))
		}
		metaURL, _ = resource.WellKnownURL(gc.Resource)
		metaPath, _ = resource.WellKnownPath(gc.Resource)
	}
	if len(errs) > 0 {
		return nil, errors.Join(append([]error{errConfig}, errs...)...)
	}
	g := &Guard{
		http:         hg,
		checker:      hg.Checker(),
		tools:        maps(cfg.Tools),
		defaultTool:  slices.Clone(cfg.DefaultTool),
		require:      slices.Clone(cfg.Require),
		realm:        gc.Realm,
		metadataURL:  metaURL,
		metadataPath: metaPath,
		metadata:     meta,
		metaHandler:  metaHandler,
		maxBody:      cfg.MaxBodyBytes,
		logger:       gc.Logger,
	}
	if g.maxBody == 0 {
		g.maxBody = DefaultMaxBodyBytes
	}
	if g.logger == nil {
		g.logger = slog.Default()
	}
	for _, reqs := range g.tools {
		if len(reqs) > 0 {
			g.checksTools = true
		}
	}
	g.checksTools = g.checksTools || len(g.defaultTool) > 0
	return g, nil
}

// checkReqs refuses the zero Requirement, which nothing satisfies (it
// fails closed): list no requirement instead.
func checkReqs(field string, reqs []scopes.Requirement) []error {
	for _, r := range reqs {
		if r.IsZero() {
			return []error{fmt.Errorf("%s holds the zero scopes.Requirement, which no token meets: list no requirement for any valid token", field)}
		}
	}
	return nil
}

func maps(m map[string][]scopes.Requirement) map[string][]scopes.Requirement {
	out := make(map[string][]scopes.Requirement, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// supported is have plus the scopes cfg's requirements name, in order, the
// added ones sorted.
func supported(have []string, cfg Config) []string {
	seen := make(map[string]bool)
	out := slices.Clone(have)
	for _, s := range have {
		seen[s] = true
	}
	var added []string
	add := func(reqs []scopes.Requirement) {
		for _, r := range reqs {
			for _, s := range r.Scopes() {
				if !seen[s] {
					seen[s] = true
					added = append(added, s)
				}
			}
		}
	}
	for _, reqs := range cfg.Tools {
		add(reqs)
	}
	add(cfg.DefaultTool)
	add(cfg.Require)
	sort.Strings(added)
	return append(out, added...)
}

// HTTP returns the Aegis HTTP Guard behind g, to protect other routes with
// the same validation and decisions.
func (g *Guard) HTTP() *middleware.Guard { return g.http }

// Metadata returns the resource's RFC 9728 metadata document.
func (g *Guard) Metadata() resource.Metadata {
	m := g.metadata
	m.AuthorizationServers = slices.Clone(m.AuthorizationServers)
	m.ScopesSupported = slices.Clone(m.ScopesSupported)
	m.BearerMethodsSupported = slices.Clone(m.BearerMethodsSupported)
	m.DPoPSigningAlgValuesSupported = slices.Clone(m.DPoPSigningAlgValuesSupported)
	return m
}

// MetadataURL is where the metadata is served, as challenges name it
// (resource_metadata): /.well-known/oauth-protected-resource inserted
// before the resource's path (RFC 9728 §3.1), so
// https://mcp.example.com/.well-known/oauth-protected-resource/mcp for
// https://mcp.example.com/mcp.
func (g *Guard) MetadataURL() string { return g.metadataURL }

// MetadataPath is MetadataURL's path, for a router.
func (g *Guard) MetadataPath() string { return g.metadataPath }

// MetadataHandler serves the metadata document (RFC 9728 §3.2) to GET and
// HEAD. Mount it at MetadataPath, outside Handler: it is public.
func (g *Guard) MetadataHandler() http.Handler { return g.metaHandler }

// Handler protects next, the SDK's streamable HTTP handler
// (mcp.NewStreamableHTTPHandler):
//
//   - Every request needs a valid token (and Config.Require): otherwise
//     401 (or 400, 403) with an RFC 6750 challenge carrying error= (when a
//     token was presented) and resource_metadata=.
//   - A POST whose JSON-RPC body (one message or a batch) calls a tool
//     whose requirement the token does not meet gets 403 with
//     error="insufficient_scope", the tool's scope= and resource_metadata=
//     (MCP 2025-11-25, Authorization, Runtime Insufficient Scope Errors),
//     before the SDK sees it; its body is a JSON-RPC error response to the
//     call (CodeInsufficientScope). The refusal is a recorded decision.
//   - A body that is not exactly one JSON value gets 400 (a JSON-RPC
//     parse error): the SDK's decoder would read its first value and
//     ignore the rest, which the check above would not have seen. Other
//     bodies that are not JSON-RPC go to the SDK, which answers them; a
//     body over Config.MaxBodyBytes gets 413, since it cannot be checked.
//   - The admitted request carries the Principal (core.PrincipalFrom) and
//     the SDK's auth.TokenInfo, which the SDK hands to tool handlers as
//     req.Extra.TokenInfo: read it with PrincipalFrom.
func (g *Guard) Handler(next http.Handler) http.Handler {
	inner := g.tokenInfo(next)
	checked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.checksTools || r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
			inner.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, g.maxBody+1))
		if err != nil {
			g.logger.DebugContext(r.Context(), "aegis: mcp request body unreadable", slog.String("path", r.URL.Path))
			http.Error(w, "failed to read body", http.StatusBadRequest)
			return
		}
		if int64(len(body)) > g.maxBody {
			g.logger.DebugContext(r.Context(), "aegis: mcp request body too large to check", slog.String("path", r.URL.Path), slog.Int64("limit", g.maxBody))
			http.Error(w, fmt.Sprintf("request body exceeds %d bytes", g.maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		// Fail closed: a body that is not exactly one JSON value (trailing
		// bytes after a batch, say, which the SDK's decoder ignores) could
		// hold a call the check below would not see.
		if !json.Valid(body) {
			g.logger.DebugContext(r.Context(), "aegis: mcp request body is not one JSON value", slog.String("path", r.URL.Path))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`)
			return
		}
		if calls := toolCalls(body); len(calls) > 0 {
			p, ok := core.PrincipalFrom(r.Context())
			if !ok { // unreachable behind Authenticate; fail closed
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			if refused, reqs := g.refusedCall(p, calls); refused != nil {
				cred := core.Credential{Method: r.Method, URL: r.URL}
				if ref := g.checker.Authorize(r.Context(), cred, p, reqs...); ref != nil {
					e := middleware.ErrorFor(ref)
					e.ResourceMetadata = g.metadataURL
					if c := e.Challenge(g.realm); c != "" {
						w.Header().Set("WWW-Authenticate", c)
					}
					writeToolRefusal(w, refused.id, e)
					return
				}
			}
		}
		inner.ServeHTTP(w, r)
	})
	return g.http.Require(g.require...)(checked)
}

// requirement is what a call of the named tool needs; none means only a
// valid token.
func (g *Guard) requirement(tool string) []scopes.Requirement {
	if r, ok := g.tools[tool]; ok {
		return r
	}
	return g.defaultTool
}

// refusedCall returns the first call whose tool's requirement p does not
// meet, if any, and the requirements of every tool called (each once), for
// the challenge's scope.
func (g *Guard) refusedCall(p *core.Principal, calls []toolCall) (*toolCall, []scopes.Requirement) {
	var refused *toolCall
	var reqs []scopes.Requirement
	seen := make(map[string]bool, len(calls))
	for i := range calls {
		need := g.requirement(calls[i].name)
		if len(need) == 0 {
			continue
		}
		for _, req := range need {
			if refused == nil && !req.SatisfiedBy(p.Scopes) {
				refused = &calls[i]
			}
		}
		if !seen[calls[i].name] {
			seen[calls[i].name] = true
			reqs = append(reqs, need...)
		}
	}
	return refused, reqs
}

// tokenInfo puts the SDK's auth.TokenInfo for the admitted Principal in
// the request's context. The SDK keeps its context key to itself, so its
// own RequireBearerToken does it, with a verifier that reports the
// Principal Aegis admitted (the token is not validated twice).
func (g *Guard) tokenInfo(next http.Handler) http.Handler {
	verify := func(_ context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		p, ok := core.PrincipalFrom(r.Context())
		if !ok {
			return nil, auth.ErrInvalidToken // unreachable behind Authenticate
		}
		return &auth.TokenInfo{
			Scopes: p.Scopes.Strings(),
			UserID: p.Subject,
			Extra:  map[string]any{ExtraPrincipal: p, "client_id": p.ClientID, "iss": p.Issuer},
		}, nil
	}
	// Aegis has checked expiry with its own clock and leeway: the SDK's
	// stricter check must not second-guess it, so the expiry is filled in
	// after.
	expiry := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ti := auth.TokenInfoFromContext(r.Context()); ti != nil {
			if p, ok := core.PrincipalFrom(r.Context()); ok {
				ti.Expiration = p.Expiry
			}
		}
		next.ServeHTTP(w, r)
	})
	sdk := auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(expiry)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The SDK's middleware reads the Bearer scheme only. A DPoP
		// request has passed the Guard, its proof checked: the SDK sees
		// its token as Bearer, in a copy of the request.
		if v := r.Header["Authorization"]; len(v) == 1 && len(v[0]) > 5 && strings.EqualFold(v[0][:5], "DPoP ") {
			c := *r
			c.Header = r.Header.Clone()
			c.Header["Authorization"] = []string{"Bearer " + v[0][5:]}
			r = &c
		}
		sdk.ServeHTTP(w, r)
	})
}

// ToolMiddleware is defense in depth for the server behind Handler: SDK
// middleware (mcp.Server.AddReceivingMiddleware) that checks each
// tools/call against the Principal of the HTTP request that carried it,
// after the SDK decoded the call. Handler refuses such calls first, with
// the 403 challenge; should one get past it, ToolMiddleware refuses it
// with a JSON-RPC error (CodeInsufficientScope). A call that arrived
// without a Principal of this Guard (another transport, say) is refused
// when its tool has a requirement.
func (g *Guard) ToolMiddleware() mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method != methodCallTool {
				return next(ctx, method, req)
			}
			call, ok := req.(*mcp.CallToolRequest)
			if !ok || call == nil || call.Params == nil {
				return next(ctx, method, req)
			}
			need := g.requirement(call.Params.Name)
			if len(need) == 0 {
				return next(ctx, method, req)
			}
			p, ok := PrincipalFrom(req)
			if !ok || !p.AdmittedBy(g.checker) {
				return nil, &jsonrpc.Error{Code: CodeInsufficientScope, Message: middleware.CodeInvalidToken + ": the call carries no access token this server admitted"}
			}
			if ref := g.checker.Authorize(ctx, core.Credential{Method: http.MethodPost}, p, need...); ref != nil {
				return nil, &jsonrpc.Error{Code: CodeInsufficientScope, Message: middleware.CodeInsufficientScope + ": " + ref.Description}
			}
			return next(ctx, method, req)
		}
	}
}

// PrincipalFrom returns the caller of a request a tool (or any) handler
// received through Handler: the Principal of the HTTP request that carried
// it, taken from req.GetExtra().TokenInfo. Prefer it to core.PrincipalFrom
// on the handler's context, which in a stateful server is the context of
// the request that opened the session, not of the call.
func PrincipalFrom(req mcp.Request) (*core.Principal, bool) {
	if req == nil {
		return nil, false
	}
	extra := req.GetExtra()
	if extra == nil || extra.TokenInfo == nil {
		return nil, false
	}
	p, ok := extra.TokenInfo.Extra[ExtraPrincipal].(*core.Principal)
	return p, ok && p != nil
}
