package middleware

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/olympus/aegis"
)

// DefaultMaxFormBytes bounds a form body read for a token.
const DefaultMaxFormBytes = 64 << 10

// BearerConfig says where access tokens are taken from (RFC 6750 §2). The
// Authorization header is always read; the form body and the query are
// off by default, as RFC 6750 and RFC 9700 advise.
type BearerConfig struct {
	// MaxLength bounds the token, checked before any decoding; default
	// aegis.DefaultMaxTokenLength (8 KiB).
	MaxLength int
	// AllowFormBody accepts access_token in an
	// application/x-www-form-urlencoded body of non-GET requests (§2.2).
	// The body is read up to MaxFormBytes and put back for the handler;
	// a larger body is not inspected (400 unless a header carries the
	// token).
	AllowFormBody bool
	// MaxFormBytes bounds the body read for it; default DefaultMaxFormBytes.
	MaxFormBytes int64
	// AllowQuery accepts access_token in the URL query (§2.3). Tokens in
	// URLs end up in logs and browser history: avoid it.
	AllowQuery bool
}

func (c BearerConfig) withDefaults() BearerConfig {
	if c.MaxLength <= 0 {
		c.MaxLength = aegis.DefaultMaxTokenLength
	}
	if c.MaxFormBytes <= 0 {
		c.MaxFormBytes = DefaultMaxFormBytes
	}
	return c
}

// extract returns the one token the request presents. More than one token,
// wherever they are, is a malformed request; a token in the query while the
// query is not a source is refused rather than ignored.
func (g *Guard) extract(w http.ResponseWriter, r *http.Request) (string, *aegis.Refusal) {
	var token string
	found := 0

	// The canonical key directly: Values would canonicalize it on every
	// request, and finds nothing more (it canonicalizes only the key
	// looked up, and the server stores keys canonicalized).
	headers := r.Header["Authorization"]
	if len(headers) > 1 {
		return "", errTwoHeaders
	}
	if len(headers) == 1 {
		t, isBearer, e := g.fromHeader(headers[0])
		if e != nil {
			return "", e
		}
		if isBearer {
			token, found = t, 1
		}
	}

	if r.URL.RawQuery != "" {
		// ParseQuery keeps every valid pair even when it reports an error,
		// so a malformed pair cannot hide a token.
		q, _ := url.ParseQuery(r.URL.RawQuery)
		if v := q["access_token"]; len(v) > 0 {
			if !g.bearer.AllowQuery {
				if found > 0 {
					return "", errTwoTokens
				}
				return "", errQueryDisabled
			}
			found += len(v)
			token = v[0]
			w.Header().Set("Cache-Control", "private")
		}
	}

	if g.bearer.AllowFormBody && r.Method != http.MethodGet && r.Body != nil && r.Body != http.NoBody && isForm(r) {
		v, e := g.fromForm(r, found > 0)
		if e != nil {
			return "", e
		}
		if len(v) > 0 {
			found += len(v)
			token = v[0]
		}
	}

	switch {
	case found == 0:
		return "", errMissing
	case found > 1:
		return "", errTwoTokens
	case token == "":
		return "", errEmptyToken
	case len(token) > g.bearer.MaxLength:
		return "", errTooLong
	}
	// The b64token syntax is checked by validate, after the verified-token
	// cache: a cached token passed it already.
	return token, nil
}

// fromForm looks for access_token in a form body and puts the body back
// as it was, so the handler reads all of it. A body over MaxFormBytes is
// not inspected: when the request has no other token that is a 400.
func (g *Guard) fromForm(r *http.Request, haveToken bool) ([]string, *aegis.Refusal) {
	head, err := io.ReadAll(io.LimitReader(r.Body, g.bearer.MaxFormBytes+1))
	if err != nil {
		return nil, errFormTooLarge
	}
	if int64(len(head)) > g.bearer.MaxFormBytes {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
		if haveToken {
			return nil, nil
		}
		return nil, errFormTooLarge
	}
	r.Body = io.NopCloser(bytes.NewReader(head))
	form, err := url.ParseQuery(string(head))
	if err != nil && len(form) == 0 {
		return nil, nil
	}
	return form["access_token"], nil
}

// fromHeader reads "Bearer <token>" or "DPoP <token>" (RFC 9449 §7.1; the
// proof is checked by the Checker); the scheme is case-insensitive. Other
// schemes are not bearer credentials (isBearer false).
func (g *Guard) fromHeader(v string) (token string, isBearer bool, e *aegis.Refusal) {
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "DPoP") {
		return "", false, nil
	}
	rest = strings.Trim(rest, " \t")
	switch {
	case rest == "":
		return "", true, errEmptyToken
	case len(rest) > g.bearer.MaxLength:
		return "", true, errTooLong
	case strings.IndexByte(rest, ' ') >= 0 || strings.IndexByte(rest, '\t') >= 0:
		// IndexByte is vectorized: ContainsAny cost ~1 µs on a JWT.
		return "", true, errHeaderSyntax
	}
	return rest, true, nil
}

func isForm(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/x-www-form-urlencoded"
}
