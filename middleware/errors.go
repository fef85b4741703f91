package middleware

import (
	"encoding/json"

	"github.com/olympus/aegis"
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
	// CodeInsufficientUserAuthentication is RFC 9470 §3's step-up code.
	CodeInsufficientUserAuthentication = "insufficient_user_authentication"
)

// Error is the HTTP answer to a refusal: its status, RFC 6750 error code
// (empty when the request carried no token at all), a description safe to
// show the caller, and the refusal's stable reason. ErrorFor makes it from
// an *aegis.Refusal: the one place where refusals become HTTP.
type Error struct {
	// Status is the HTTP status: 400, 401, 403, 429 or 503.
	Status int
	// Code is the RFC 6750 error code, or empty.
	Code string
	// Description is Aegis's own text, never a token or a library's error.
	Description string
	// Reason is the refusal's stable, machine-readable cause.
	Reason aegis.Reason
	// Scope is what the route needs, for insufficient_scope.
	Scope string
	// RetryAfter is set on 429 and 503 answers.
	RetryAfter time.Duration
	// ACRValues and MaxAge are the resource's requirements on the user's
	// authentication, for insufficient_user_authentication (RFC 9470).
	ACRValues []string
	MaxAge    time.Duration
	// ResourceMetadata is the URL of the resource's RFC 9728 metadata,
	// carried by the challenge (resource_metadata) when set; the Guard
	// sets it from Config.Resource.
	ResourceMetadata string
	// Err is the underlying cause, for logs only.
	Err error
}

// ErrorFor maps a refusal to its HTTP answer:
//
//	class invalid       401 invalid_token (400 invalid_request for
//	                    request_malformed; no code for token_missing;
//	                    invalid_dpop_proof and use_dpop_nonce for DPoP)
//	class forbidden     403 insufficient_scope
//	class limited       429
//	class unavailable   503
func ErrorFor(r *aegis.Refusal) *Error {
	e := &Error{Description: r.Description, Reason: r.Reason, Scope: r.Scope, RetryAfter: r.RetryAfter,
		ACRValues: r.ACRValues, MaxAge: r.MaxAge, Err: r.Err}
	switch r.Class {
	case aegis.ClassForbidden:
		e.Status, e.Code = http.StatusForbidden, CodeInsufficientScope
	case aegis.ClassLimited:
		e.Status = http.StatusTooManyRequests
	case aegis.ClassUnavailable:
		e.Status = http.StatusServiceUnavailable
	default:
		switch r.Reason {
		case aegis.ReasonTokenMissing:
			e.Status = http.StatusUnauthorized
		case aegis.ReasonRequestMalformed:
			e.Status, e.Code = http.StatusBadRequest, CodeInvalidRequest
		case aegis.ReasonInsufficientUserAuthentication:
			e.Status, e.Code = http.StatusUnauthorized, CodeInsufficientUserAuthentication
		case aegis.ReasonInvalidDPoPProof:
			e.Status, e.Code = http.StatusUnauthorized, CodeInvalidDPoPProof
		case aegis.ReasonUseDPoPNonce:
			e.Status, e.Code = http.StatusUnauthorized, CodeUseDPoPNonce
		default:
			e.Status, e.Code = http.StatusUnauthorized, CodeInvalidToken
		}
	}
	return e
}

// Error describes the refusal in Aegis's own words.
func (e *Error) Error() string {
	if e == nil {
		return "aegis: <nil>"
	}
	s := string(e.Reason)
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
	if len(e.ACRValues) > 0 {
		// RFC 9470 §3: space-separated, in preference order.
		b.WriteString(`, acr_values="`)
		b.WriteString(quotable(strings.Join(e.ACRValues, " ")))
		b.WriteByte('"')
	}
	if e.MaxAge > 0 {
		b.WriteString(`, max_age="`)
		b.WriteString(formatSeconds(e.MaxAge))
		b.WriteByte('"')
	}
	if e.ResourceMetadata != "" {
		// RFC 9728 §5.1.
		b.WriteString(`, resource_metadata="`)
		b.WriteString(quotable(e.ResourceMetadata))
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
	// ACRValues and MaxAge (seconds) are what the route requires of the
	// user's authentication, on insufficient_user_authentication.
	ACRValues string `json:"acr_values,omitempty"`
	MaxAge    int64  `json:"max_age,omitempty"`
	// ResourceMetadata is the URL of the resource's RFC 9728 metadata.
	ResourceMetadata string `json:"resource_metadata,omitempty"`
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

		ACRValues:        strings.Join(e.ACRValues, " "),
		MaxAge:           int64((e.MaxAge + time.Second - 1) / time.Second),
		ResourceMetadata: e.ResourceMetadata,
	})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

func formatSeconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// Refusals the Guard makes itself, before any token is validated.
var (
	errMissing       = aegis.Refuse(aegis.ReasonTokenMissing, nil)
	errTwoTokens     = malformed("The request presents more than one access token")
	errTwoHeaders    = malformed("The request has more than one Authorization header")
	errHeaderSyntax  = malformed("The Authorization header is malformed")
	errEmptyToken    = malformed("The Bearer credentials are empty")
	errQueryDisabled = malformed("Access tokens in the URL query are not accepted")
	errFormTooLarge  = malformed("The form body is too large or malformed")
	errTooLong       = aegis.Refuse(aegis.ReasonTokenTooLong, nil)
)

func malformed(description string) *aegis.Refusal {
	r := aegis.Refuse(aegis.ReasonRequestMalformed, nil)
	r.Description = description
	return r
}
