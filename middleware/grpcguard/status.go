package grpcguard

import (
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/ratelimit"
)

// Metadata keys the interceptors send.
const (
	// challengeKey is the trailer carrying the RFC 6750 challenge.
	challengeKey = "www-authenticate"
)

// ErrorDomain is the domain of the errdetails.ErrorInfo every refusal's
// status carries; its reason is the upper-cased aegis.Reason
// ("TOKEN_EXPIRED", "INSUFFICIENT_SCOPE", "RATE_LIMITED"…).
const ErrorDomain = "aegis"

// codeOf returns the gRPC code of a refusal:
//
//	class invalid       Unauthenticated
//	class forbidden     PermissionDenied
//	class limited       ResourceExhausted
//	class unavailable   Unavailable
//
// so the sender-constrained token reasons (invalid_dpop_proof,
// use_dpop_nonce, binding_mismatch, certificate_mismatch) are
// Unauthenticated and replay_store_unavailable is Unavailable.
func codeOf(r *aegis.Refusal) codes.Code {
	switch r.Class {
	case aegis.ClassForbidden:
		return codes.PermissionDenied
	case aegis.ClassLimited:
		return codes.ResourceExhausted
	case aegis.ClassUnavailable:
		return codes.Unavailable
	default:
		return codes.Unauthenticated
	}
}

// Status returns the gRPC status of a refusal, as the interceptors send
// it: the code of its class (Unauthenticated, PermissionDenied,
// ResourceExhausted or Unavailable), a message in Aegis's own words (never
// the token, nor the refusal's cause), an errdetails.ErrorInfo naming its
// reason and, when the caller should retry later, an errdetails.RetryInfo
// with the delay. Handlers that refuse a call for a refusal of their own
// (from core.Checker.Authorize, say) return Status(r).Err().
func Status(r *aegis.Refusal) *status.Status {
	st := status.New(codeOf(r), message(r))
	details := make([]protoadapt.MessageV1, 0, 2)
	details = append(details, &errdetails.ErrorInfo{Reason: strings.ToUpper(string(r.Reason)), Domain: ErrorDomain})
	if r.RetryAfter > 0 && (r.Class == aegis.ClassLimited || r.Class == aegis.ClassUnavailable) {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(ceilSecond(r.RetryAfter))})
	}
	if withDetails, err := st.WithDetails(details...); err == nil {
		st = withDetails
	}
	return st
}

// message is the status message of r: "aegis: <reason>: <description>".
func message(r *aegis.Refusal) string {
	d := r.Description
	if d == "" && r.Reason == aegis.ReasonTokenMissing {
		d = "The call has no access token in its authorization metadata"
	}
	s := "aegis: " + string(r.Reason)
	if d != "" {
		s += ": " + d
	}
	return s
}

// ceilSecond rounds d up to a whole second, as Retry-After does over HTTP.
func ceilSecond(d time.Duration) time.Duration {
	return (d + time.Second - 1) / time.Second * time.Second
}

// refusalError is a refusal's status error: gRPC sends its status, and
// errors.As finds the *aegis.Refusal in its chain.
type refusalError struct {
	st *status.Status
	r  *aegis.Refusal
}

func errorOf(r *aegis.Refusal) error { return &refusalError{st: Status(r), r: r} }

// Error is the status error's text: the code and Aegis's message.
func (e *refusalError) Error() string { return e.st.Err().Error() }

// GRPCStatus is the status gRPC sends.
func (e *refusalError) GRPCStatus() *status.Status { return e.st }

// Unwrap returns the refusal.
func (e *refusalError) Unwrap() error { return e.r }

// rateLimitMetadata is the HTTP middleware's rate-limit headers as
// metadata: the IETF httpapi draft's ratelimit-policy and ratelimit, and
// the customary x-ratelimit-*. Reset times are delta seconds, rounded up.
func rateLimitMetadata(d ratelimit.Decision) metadata.MD {
	q := strconv.Itoa(d.Limit.PerMinute)
	remaining := strconv.Itoa(d.Remaining)
	reset := strconv.FormatInt(int64(ceilSecond(d.Reset)/time.Second), 10)
	return metadata.MD{
		"ratelimit-policy":      {`"client";q=` + q + `;w=60`},
		"ratelimit":             {`"client";r=` + remaining + `;t=` + reset},
		"x-ratelimit-limit":     {q},
		"x-ratelimit-remaining": {remaining},
		"x-ratelimit-reset":     {reset},
	}
}
