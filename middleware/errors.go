package middleware

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RFC 6750 §3.1 error codes.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// Error is a refusal: the status, the RFC 6750 error code (empty when the
// request carried no token at all), a description safe to show the caller,
// and a stable reason for logs and metrics. Validators may return an *Error
// to choose the response themselves.
type Error struct {
	// Status is the HTTP status: 400, 401, 403 or 503.
	Status int
	// Code is the RFC 6750 error code, or empty.
	Code string
	// Description is Aegis's own text, never a token or a library's error.
	Description string
	// Reason is a stable, machine-readable cause such as "token_expired".
	Reason string
	// Scope is what the route needs, for insufficient_scope.
	Scope string
	// RetryAfter is set on 503 answers.
	RetryAfter time.Duration
	// Err is the underlying cause, for logs only.
	Err error
}

// Error describes the refusal in Aegis's own words.
func (e *Error) Error() string {
	if e == nil {
		return "aegis: <nil>"
	}
	s := e.Reason
	if e.Description != "" {
		s += ": " + e.Description
	}
	return "aegis: " + s
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Challenge returns the WWW-Authenticate value for e under realm, or "" for
// answers that carry none (429, 503: the token was not the problem).
func (e *Error) Challenge(realm string) string {
	switch e.Status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
	default:
		return ""
	}
	var b strings.Builder
	b.WriteString(`Bearer realm="`)
	b.WriteString(quotable(realm))
	b.WriteByte('"')
	if e.Code != "" {
		b.WriteString(`, error="`)
		b.WriteString(quotable(e.Code))
		b.WriteByte('"')
		if e.Description != "" {
			b.WriteString(`, error_description="`)
			b.WriteString(quotable(e.Description))
			b.WriteByte('"')
		}
	}
	if e.Scope != "" {
		b.WriteString(`, scope="`)
		b.WriteString(quotable(e.Scope))
		b.WriteByte('"')
	}
	return b.String()
}

// quotable keeps only the characters RFC 6750 §3 allows inside its quoted
// attribute values (%x20-21 / %x23-5B / %x5D-7E): no quotes, backslashes,
// CR, LF or anything outside printable ASCII.
func quotable(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if !allowedInQuotes(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if allowedInQuotes(s[i]) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func allowedInQuotes(c byte) bool {
	return c == 0x20 || c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E)
}

// ErrorWriter writes the body of a refusal. The Guard has already set
// WWW-Authenticate and Retry-After when it calls it.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, e *Error)

// Problem is the RFC 9457 body of a refusal.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Error carries the RFC 6750 error code.
	Error string `json:"error,omitempty"`
	// Scope is what the route needs, on insufficient_scope.
	Scope string `json:"scope,omitempty"`
}

// WriteProblem is the default ErrorWriter: an application/problem+json
// body (RFC 9457) carrying the same code as the challenge.
func WriteProblem(w http.ResponseWriter, _ *http.Request, e *Error) {
	body, _ := json.Marshal(Problem{
		Type:   "about:blank",
		Title:  http.StatusText(e.Status),
		Status: e.Status,
		Detail: e.Description,
		Error:  e.Code,
		Scope:  e.Scope,
	})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, e *Error) {
	e = e.clone() // the writer may change its copy
	if c := e.Challenge(g.realm); c != "" {
		w.Header().Set("WWW-Authenticate", c)
	}
	if e.RetryAfter > 0 {
		secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	p, _ := PrincipalFrom(r.Context())
	g.obs.decide(r.Context(), r, refused(e, p), e.Err)
	g.writeError(w, r, e)
}

func errorf(status int, code, reason, description string) *Error {
	return &Error{Status: status, Code: code, Reason: reason, Description: description}
}

func (e *Error) clone() *Error {
	c := *e
	return &c
}

// normalized is a copy of an *Error from a custom validator with a status
// Aegis can answer with: any 4xx, or 503 for server trouble; anything else
// becomes 401 (below 400, above 599) or 503 (other 5xx).
func (e *Error) normalized() *Error {
	c := e.clone()
	switch {
	case c.Status >= 400 && c.Status < 500, c.Status == http.StatusServiceUnavailable:
	case c.Status >= 500 && c.Status < 600:
		c.Status = http.StatusServiceUnavailable
	default:
		c.Status = http.StatusUnauthorized
	}
	if c.Status == http.StatusServiceUnavailable && c.RetryAfter <= 0 {
		c.RetryAfter = 5 * time.Second
	}
	return c
}

func (e *Error) withCause(err error) *Error {
	c := *e
	c.Err = err
	return &c
}

var (
	errMissing       = errorf(http.StatusUnauthorized, "", "token_missing", "")
	errTwoTokens     = errorf(http.StatusBadRequest, CodeInvalidRequest, "request_malformed", "The request presents more than one access token")
	errTwoHeaders    = errorf(http.StatusBadRequest, CodeInvalidRequest, "request_malformed", "The request has more than one Authorization header")
	errHeaderSyntax  = errorf(http.StatusBadRequest, CodeInvalidRequest, "request_malformed", "The Authorization header is malformed")
	errEmptyToken    = errorf(http.StatusBadRequest, CodeInvalidRequest, "request_malformed", "The Bearer credentials are empty")
	errQueryDisabled = errorf(http.StatusBadRequest, CodeInvalidRequest, "request_malformed", "Access tokens in the URL query are not accepted")
	errFormTooLarge  = errorf(http.StatusBadRequest, CodeInvalidRequest, "request_malformed", "The form body is too large or malformed")
	errTooLong       = errorf(http.StatusUnauthorized, CodeInvalidToken, "token_too_long", "The access token is too long")
	errSyntax        = errorf(http.StatusUnauthorized, CodeInvalidToken, "token_malformed", "The access token is malformed")
	errScopeClaim    = errorf(http.StatusUnauthorized, CodeInvalidToken, "claims_invalid", "The access token's scope claim is invalid")
	errEmailClaim    = errorf(http.StatusUnauthorized, CodeInvalidToken, "claims_invalid", "The access token's email claim is invalid")
	errInvalid       = errorf(http.StatusUnauthorized, CodeInvalidToken, "token_invalid", "The access token is invalid")
)

func insufficientScope(scope string) *Error {
	e := errorf(http.StatusForbidden, CodeInsufficientScope, "insufficient_scope", "The access token does not grant the scope this resource needs")
	e.Scope = scope
	return e
}
