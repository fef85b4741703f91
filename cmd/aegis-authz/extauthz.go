package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/olympus/aegis/internal/clientcert"
)

// authorizer is the Service as Envoy's envoy.service.auth.v3.Authorization.
type authorizer struct {
	authv3.UnimplementedAuthorizationServer
	s *Service
}

// Authorization returns the Service as Envoy's ext_authz gRPC service, to
// register with authv3.RegisterAuthorizationServer.
func (s *Service) Authorization() authv3.AuthorizationServer { return &s.authorizer }

// Check decides the request Envoy describes (attributes.request.http:
// method, scheme, host, path with its query, headers with lower-case
// names, among them authorization and dpop; attributes.source.certificate,
// the client's TLS certificate, with include_peer_certificate: true)
// exactly as ServeHTTP decides a forwarded one. Allowed: status OK, the
// five identity headers set (overwriting), every other x-auth-* header the
// client sent removed, and the rate-limit headers and DPoP-Nonce added to
// the client's response. Refused: denied_response with the HTTP status,
// headers (every value of each: both WWW-Authenticate challenges) and
// problem+json body of the HTTP answer. A malformed CheckRequest is refused
// as a malformed request (400), never a gRPC error: Envoy would then apply
// failure_mode_allow.
func (a *authorizer) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp()
	headers := h.GetHeaders()
	if len(headers) == 0 {
		headers = headerMap(h.GetHeaderMap())
	}
	rec := &recorder{header: make(http.Header, 8)}
	if h == nil {
		a.s.refuseMalformed(rec, ctx, "The check request carries no HTTP request attributes")
	} else if c, err := a.s.checkedRequest(req.GetAttributes(), headers); err != nil {
		a.s.refuseMalformed(rec, ctx, err.Error())
	} else {
		a.s.decide(rec, ctx, c)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status == http.StatusOK {
		return okResponse(rec.header, headers), nil
	}
	return deniedResponse(rec), nil
}

// checkedRequest is the client's request a CheckRequest describes: the
// scheme ("" is http) and host of attributes.request.http, its
// authorization and dpop headers (a value Envoy joined with commas is
// more than one proof), and over https the certificate of
// attributes.source.certificate. Never a header's certificate: Envoy
// passes the client's headers on, whichever it made up. A malformed scheme
// or host refuses a request that presents a DPoP proof or a certificate,
// and is ignored for any other.
func (s *Service) checkedRequest(attrs *authv3.AttributeContext, headers map[string]string) (*clientRequest, error) {
	h := attrs.GetRequest().GetHttp()
	c := &clientRequest{method: h.GetMethod(), uri: h.GetPath(), host: h.GetHost()}
	if v, ok := headers["authorization"]; ok {
		c.authorization = []string{v}
	}
	if v, ok := headers["dpop"]; ok {
		c.dpop = strings.Split(v, ",")
	}
	pem := attrs.GetSource().GetCertificate()
	binding := usesBinding(c.authorization, c.dpop, pem != "")
	if scheme := h.GetScheme(); scheme != "" {
		https, err := parseScheme(scheme)
		if err != nil && binding {
			return nil, errors.New("The request's scheme is malformed: " + err.Error())
		}
		c.https = https
	}
	if err := checkHost(c.host); err != nil {
		if binding {
			return nil, errors.New("The request's host is malformed: " + err.Error())
		}
		c.host = ""
	}
	if c.https && pem != "" {
		if cert, err := clientcert.Parse(clientcert.EscapedPEM, pem); err == nil {
			c.cert = cert
		} else {
			s.log.Debug("attributes.source.certificate unreadable", slog.String("error", err.Error()))
		}
	}
	return c, nil
}

// headerMap reads Envoy's header_map (sent instead of headers when
// encode_raw_headers is set).
func headerMap(m *corev3.HeaderMap) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m.GetHeaders()))
	for _, hv := range m.GetHeaders() {
		k := strings.ToLower(hv.GetKey())
		v := hv.GetValue()
		if v == "" {
			v = string(hv.GetRawValue())
		}
		if prev, ok := out[k]; ok {
			v = prev + "," + v
		}
		out[k] = v
	}
	return out
}

// rateLimitHeaders are the headers of the HTTP answer that an allowed
// request's client sees too: the rate-limit headers and the DPoP nonce
// (RFC 9449 §8.2).
var rateLimitHeaders = []string{"RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "DPoP-Nonce"}

func okResponse(answer http.Header, sent map[string]string) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{}
	set := make(map[string]bool, len(IdentityHeaders))
	for _, name := range IdentityHeaders {
		v := answer.Get(name)
		key := strings.ToLower(name)
		ok.Headers = append(ok.Headers, &corev3.HeaderValueOption{
			Header:         &corev3.HeaderValue{Key: key, Value: v},
			AppendAction:   corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
			KeepEmptyValue: true,
		})
		if v != "" {
			set[key] = true
		}
	}
	// Every x-auth-* header the client sent goes, but those just set to
	// a value: whichever order Envoy applies the two lists in, the
	// upstream sees only this answer's identity. x_auth_* spellings go
	// too: CGI-style upstreams read X_Auth_Email as X-Auth-Email.
	for k := range sent {
		if (strings.HasPrefix(k, "x-auth-") || strings.HasPrefix(k, "x_auth_") || strings.HasPrefix(k, "x-auth_") || strings.HasPrefix(k, "x_auth-")) && !set[k] {
			ok.HeadersToRemove = append(ok.HeadersToRemove, k)
		}
	}
	slices.Sort(ok.HeadersToRemove)
	for _, name := range rateLimitHeaders {
		if v := answer.Get(name); v != "" {
			ok.ResponseHeadersToAdd = append(ok.ResponseHeadersToAdd, &corev3.HeaderValueOption{
				Header:       &corev3.HeaderValue{Key: strings.ToLower(name), Value: v},
				AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
			})
		}
	}
	return &authv3.CheckResponse{
		Status:       &status.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

func deniedResponse(rec *recorder) *authv3.CheckResponse {
	denied := &authv3.DeniedHttpResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode(rec.status)},
		Body:   string(rec.body),
	}
	names := make([]string, 0, len(rec.header))
	for k := range rec.header {
		names = append(names, k)
	}
	slices.Sort(names)
	// Each value of a header is a field of its own, in order: the first
	// overwrites, the next append (both WWW-Authenticate challenges reach
	// the client).
	for _, k := range names {
		for i, v := range rec.header[k] {
			action := corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			if i > 0 {
				action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
			}
			denied.Headers = append(denied.Headers, &corev3.HeaderValueOption{
				Header:       &corev3.HeaderValue{Key: strings.ToLower(k), Value: v},
				AppendAction: action,
			})
		}
	}
	return &authv3.CheckResponse{
		Status:       &status.Status{Code: int32(grpcCode(rec.status)), Message: statusText(rec.status)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: denied},
	}
}

// grpcCode is the gRPC status of a refusal with HTTP status s (Envoy
// denies on any code but OK; the code tells logs why).
func grpcCode(s int) codes.Code {
	switch s {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.PermissionDenied
}
