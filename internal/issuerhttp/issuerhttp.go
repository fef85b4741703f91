// Package issuerhttp holds what Aegis's packages share when they talk to an
// authorization server: which URLs may be trusted, bounded requests, and
// RFC 8414 / OpenID Connect metadata discovery.
package issuerhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/olympus/aegis/internal/strictjson"
)

// ErrNotFound marks a 404 answer.
var ErrNotFound = errors.New("not found")

// ErrInsecureHTTP marks an http URL on a host other than loopback.
var ErrInsecureHTTP = errors.New("uses http on a non-loopback host")

// CheckURL accepts https URLs, and http URLs on loopback hosts (or anywhere
// when allowHTTP is set).
func CheckURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", Redact(raw))
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && (allowHTTP || IsLoopback(u.Hostname())):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("%q %w (set AllowInsecureHTTP to permit it)", Redact(raw), ErrInsecureHTTP)
	default:
		return fmt.Errorf("%q: scheme must be https", Redact(raw))
	}
}

// redacted replaces each secret part of a URL.
const redacted = "xxxxx"

// Redact returns raw fit for a log line or an error text: every URL Aegis
// logs or wraps into an error goes through it. It replaces
//   - the whole user info (user name and password: a token is often sent
//     as the user name alone) by "xxxxx@";
//   - the value of every query parameter by "xxxxx", keeping the names and
//     their order (a query that is not name=value pairs becomes "xxxxx");
//   - the fragment, and the opaque part of a URL that has one
//     ("svc:S3cret@host" parses as scheme svc), by "xxxxx".
//
// Scheme, host, port and path are kept as they are: a secret in a path is
// not recognisable. A string that does not parse as a URL gives
// "[unparseable URL]".
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparseable URL]"
	}
	if u.User != nil {
		u.User = url.User(redacted)
	}
	if u.Opaque != "" {
		// "svc:S3cret@host" parses as scheme svc, opaque S3cret@host.
		u.Opaque = redacted
	}
	if u.RawQuery != "" {
		pairs := strings.Split(u.RawQuery, "&")
		for i, pair := range pairs {
			if name, _, ok := strings.Cut(pair, "="); ok {
				pairs[i] = name + "=" + redacted
			}
		}
		u.RawQuery = strings.Join(pairs, "&")
		if _, err := url.ParseQuery(u.RawQuery); err != nil {
			u.RawQuery = redacted
		}
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = redacted, ""
	}
	return u.String()
}

// RedactError redacts the URL that net/http puts into the *url.Error it
// returns from a request (it masks a password, but not the user name or the
// query), so that the error's text can be logged. It returns err.
func RedactError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = Redact(ue.URL)
	}
	return err
}

// IsLoopback reports whether host is localhost or a loopback IP.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewClient returns the default client: redirects are followed only within
// the same origin, three at most.
func NewClient() *http.Client {
	return &http.Client{CheckRedirect: SameOriginRedirects}
}

// Harden returns a client that follows redirects only within the same
// origin, whatever c allows: a shallow copy of c (nil means a new client)
// whose CheckRedirect applies SameOriginRedirects before c's own policy.
func Harden(c *http.Client) *http.Client {
	if c == nil {
		return NewClient()
	}
	hardened := *c
	own := c.CheckRedirect
	hardened.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := SameOriginRedirects(req, via); err != nil {
			return err
		}
		if own != nil {
			return own(req, via)
		}
		return nil
	}
	return &hardened
}

// SameOriginRedirects is an http.Client CheckRedirect policy.
func SameOriginRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("too many redirects")
	}
	if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		return errors.New("redirect to another origin refused")
	}
	return nil
}

// Get fetches u with a timeout and a cap on the body. Any status but 200 is
// an error (404 wraps ErrNotFound).
func Get(ctx context.Context, client *http.Client, u string, timeout time.Duration, maxBytes int64, accept string) ([]byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("request for %s: %w", Redact(u), RedactError(err))
	}
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", Redact(u), RedactError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil, fmt.Errorf("GET %s: %w", Redact(u), ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: status %d", Redact(u), resp.StatusCode)
	}
	body, err := ReadCapped(resp.Body, maxBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", Redact(u), err)
	}
	return body, resp.Header, nil
}

// ReadCapped reads at most max bytes and fails if there are more.
func ReadCapped(r io.Reader, max int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("body over %d bytes", max)
	}
	return body, nil
}

// Metadata is what Aegis reads of an authorization server's metadata.
type Metadata struct {
	Issuer                string
	JWKSURI               string
	IntrospectionEndpoint string
}

// metadataMembers are the members ParseMetadata reads.
var metadataMembers = []string{"issuer", "jwks_uri", "introspection_endpoint"}

// ParseMetadata reads the members Aegis uses from an authorization
// server's metadata document (RFC 8414 §2): a strict JSON object (no
// duplicate names at the top level, where encoding/json would keep the
// last), names matched exactly (encoding/json would match "ISSUER" too),
// each a string when present (null counts as absent). A member named as
// one of those but for letter case ("ISSUER") is refused.
func ParseMetadata(body []byte) (Metadata, error) {
	members, err := strictjson.Shallow(body, 32)
	if err != nil {
		return Metadata{}, errors.New("not a strict JSON object")
	}
	var meta Metadata
	for _, m := range members {
		var field *string
		switch m.Name {
		case "issuer":
			field = &meta.Issuer
		case "jwks_uri":
			field = &meta.JWKSURI
		case "introspection_endpoint":
			field = &meta.IntrospectionEndpoint
		default:
			// A member named as one of these but for letter case is
			// refused: encoding/json would read it as that member, and
			// no two readers may see different metadata.
			for _, read := range metadataMembers {
				if strings.EqualFold(m.Name, read) {
					return Metadata{}, fmt.Errorf("member %q differs from %q only in letter case", m.Name, read)
				}
			}
			continue
		}
		if string(m.Value) == "null" {
			continue // as if absent, as encoding/json reads it
		}
		if *field, err = strictjson.String(m.Value); err != nil {
			return Metadata{}, fmt.Errorf("%s is not a string", m.Name)
		}
	}
	return meta, nil
}

// MetadataURLs lists where an issuer's metadata may be: OpenID Connect
// Discovery first, then RFC 8414 (well-known segment before the path).
func MetadataURLs(issuer string) []string {
	oidc := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	u, err := url.Parse(issuer)
	if err != nil {
		return []string{oidc}
	}
	path := strings.TrimSuffix(u.Path, "/")
	u.Path = "/.well-known/oauth-authorization-server" + path
	u.RawPath = ""
	return []string{oidc, u.String()}
}

// Discover reads issuer's metadata from the first well-known location that
// has it. The metadata must name issuer exactly; the URLs it gives are
// checked with CheckURL by the caller.
func Discover(ctx context.Context, client *http.Client, issuer string, timeout time.Duration, maxBytes int64) (Metadata, error) {
	var errs []error
	for _, u := range MetadataURLs(issuer) {
		body, _, err := Get(ctx, client, u, timeout, maxBytes, "application/json")
		if err != nil {
			errs = append(errs, err)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return Metadata{}, err
		}
		meta, err := ParseMetadata(body)
		if err != nil {
			return Metadata{}, fmt.Errorf("metadata at %s: %w", Redact(u), err)
		}
		if meta.Issuer != issuer {
			return Metadata{}, fmt.Errorf("metadata at %s names issuer %q, not %q", Redact(u), clip(Redact(meta.Issuer)), Redact(issuer))
		}
		return meta, nil
	}
	return Metadata{}, fmt.Errorf("discovery failed: %w", errors.Join(errs...))
}

func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
