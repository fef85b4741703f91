// Package resource describes a protected resource to its clients: the
// OAuth 2.0 Protected Resource Metadata of RFC 9728, served at its
// well-known address, whose URL the Guard's challenges then carry
// (resource_metadata, RFC 9728 §5.1), so that a client refused with 401
// learns which authorization server to ask and for what.
package resource

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// WellKnownSuffix is the well-known URI suffix of RFC 9728 §3.
const WellKnownSuffix = "oauth-protected-resource"

// Metadata is a protected resource's metadata document (RFC 9728 §2).
// Resource is required; empty members are left out of the document.
type Metadata struct {
	// Resource is the resource identifier: an https URL with no fragment
	// (RFC 9728 §1.2). It is echoed exactly, and is what tokens for this
	// resource carry in aud (RFC 8707).
	Resource string `json:"resource"`
	// AuthorizationServers are the issuer identifiers of the authorization
	// servers that issue tokens for this resource.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	// JWKSURI is the resource's own JWK Set, when it signs responses.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// ScopesSupported are the scope values used in authorization requests
	// for this resource.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// BearerMethodsSupported are the ways a bearer token may be sent:
	// "header", "body", "query" (RFC 6750).
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	// ResourceSigningAlgValuesSupported are the JWS algorithms the
	// resource signs its responses with.
	ResourceSigningAlgValuesSupported []string `json:"resource_signing_alg_values_supported,omitempty"`
	// ResourceName is a human-readable name of the resource.
	ResourceName string `json:"resource_name,omitempty"`
	// ResourceDocumentation is a page of documentation for developers.
	ResourceDocumentation string `json:"resource_documentation,omitempty"`
	// ResourcePolicyURI and ResourceTOSURI are the resource's policy and
	// terms of service.
	ResourcePolicyURI string `json:"resource_policy_uri,omitempty"`
	ResourceTOSURI    string `json:"resource_tos_uri,omitempty"`
	// TLSClientCertificateBoundAccessTokens announces RFC 8705 support.
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	// AuthorizationDetailsTypesSupported are the RFC 9396 types accepted.
	AuthorizationDetailsTypesSupported []string `json:"authorization_details_types_supported,omitempty"`
	// DPoPSigningAlgValuesSupported are the JWS algorithms accepted for
	// DPoP proofs (RFC 9449).
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	// DPoPBoundAccessTokensRequired announces that only DPoP-bound tokens
	// are accepted.
	DPoPBoundAccessTokensRequired bool `json:"dpop_bound_access_tokens_required,omitempty"`
}

// ErrResource reports a resource identifier RFC 9728 does not allow.
var ErrResource = errors.New("resource: the resource identifier must be an absolute https URL without a fragment")

// WellKnownURL returns where the metadata of the resource identified by
// resource is served (RFC 9728 §3.1): /.well-known/oauth-protected-resource
// inserted between the host and the path, a trailing slash of an otherwise
// empty path dropped, the query kept. http is accepted for loopback hosts
// only (local development).
func WellKnownURL(resource string) (string, error) {
	u, err := parse(resource)
	if err != nil {
		return "", err
	}
	path := u.EscapedPath()
	if path == "/" {
		path = ""
	}
	w := url.URL{Scheme: u.Scheme, Host: u.Host}
	s := w.String() + "/.well-known/" + WellKnownSuffix + path
	if u.RawQuery != "" {
		s += "?" + u.RawQuery
	}
	return s, nil
}

// WellKnownPath is WellKnownURL's path (with its query, if any), for a
// router: "/.well-known/oauth-protected-resource" for a resource without a
// path.
func WellKnownPath(resource string) (string, error) {
	s, err := WellKnownURL(resource)
	if err != nil {
		return "", err
	}
	u, _ := url.Parse(s)
	return u.EscapedPath(), nil
}

func parse(resource string) (*url.URL, error) {
	u, err := url.Parse(resource)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" || u.User != nil || u.Fragment != "" || strings.Contains(resource, "#") {
		return nil, fmt.Errorf("%w: %q", ErrResource, resource)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback(u.Hostname()):
	default:
		return nil, fmt.Errorf("%w: %q", ErrResource, resource)
	}
	return u, nil
}

func loopback(host string) bool {
	switch host {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return strings.HasPrefix(host, "127.")
}

// Validate checks the document: a valid Resource, and absolute URLs where
// RFC 9728 asks for them.
func (m *Metadata) Validate() error {
	if _, err := parse(m.Resource); err != nil {
		return err
	}
	for _, as := range m.AuthorizationServers {
		if u, err := url.Parse(as); err != nil || !u.IsAbs() || u.Host == "" {
			return fmt.Errorf("resource: authorization server %q is not an absolute URL", as)
		}
	}
	return nil
}

// Handler serves m as JSON (RFC 9728 §3.2) to GET and HEAD, at whatever
// path it is mounted on (WellKnownPath), or returns m's Validate error. The
// document is public, so every answer allows any origin to read it (CORS,
// without credentials), and OPTIONS answers a browser's preflight.
func Handler(m Metadata) (http.Handler, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The document is public: any web page may read it (browser-based
		// clients, MCP's among them, discover the authorization server
		// from it), never with credentials.
		h.Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Allow-Methods", "GET, HEAD")
			h.Set("Access-Control-Allow-Headers", "*")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "max-age=3600")
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	}), nil
}
