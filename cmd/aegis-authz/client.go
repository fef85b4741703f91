package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/olympus/aegis/internal/clientcert"
)

// The request headers that describe the client's request beyond its
// method and URI: the scheme and host it addressed (a DPoP proof's htu,
// RFC 9449 §4.3) and its DPoP proof. The gateway must set (overwrite) the
// first two; nginx: proxy_set_header.
const (
	HeaderForwardedProto = "X-Forwarded-Proto"
	HeaderForwardedHost  = "X-Forwarded-Host"
	// HeaderDPoP carries the client's DPoP proof, copied as the client
	// sent it (more than one is refused by the Guard).
	HeaderDPoP = "DPoP"
)

// clientRequest is the client's request as the gateway describes it: what
// the Guard needs to decide on it.
type clientRequest struct {
	method, uri string
	// host is the host (and port) the client addressed; https whether it
	// did so over TLS.
	host  string
	https bool
	// authorization and dpop are the values of the client's
	// Authorization and DPoP headers.
	authorization, dpop []string
	// cert is the TLS client certificate the client presented, nil for
	// none (or over http).
	cert *x509.Certificate
}

// request is the *http.Request the Guard decides on: the client's
// method, URI, host, scheme (a non-nil TLS for https), Authorization and
// DPoP headers and TLS client certificate, nothing else.
func (c *clientRequest) request() *http.Request {
	r := &http.Request{Method: c.method, RequestURI: c.uri, Host: c.host, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header, 2), Body: http.NoBody}
	if len(c.authorization) > 0 {
		r.Header["Authorization"] = c.authorization
	}
	if len(c.dpop) > 0 {
		r.Header["Dpop"] = c.dpop
	}
	if c.https {
		r.TLS = &tls.ConnectionState{HandshakeComplete: true}
		if c.cert != nil {
			r.TLS.PeerCertificates = []*x509.Certificate{c.cert}
		}
	}
	return r
}

// usesBinding reports whether a request presents a DPoP proof (a DPoP
// header, or the DPoP scheme in its Authorization header) or a client
// certificate: whether the scheme and host it addressed matter.
func usesBinding(authorization, dpop []string, cert bool) bool {
	if len(dpop) > 0 || cert {
		return true
	}
	for _, a := range authorization {
		if len(a) > 5 && a[4] == ' ' && strings.EqualFold(a[:4], "DPoP") {
			return true
		}
	}
	return false
}

// parseScheme reads a forwarded scheme: "http" or "https", in any case,
// or their WebSocket forms "ws" and "wss" (Traefik sends these for an
// upgrade request).
func parseScheme(v string) (https bool, err error) {
	switch {
	case strings.EqualFold(v, "https"), strings.EqualFold(v, "wss"):
		return true, nil
	case strings.EqualFold(v, "http"), strings.EqualFold(v, "ws"):
		return false, nil
	}
	return false, errors.New("it is neither http nor https")
}

// forwardedScheme reads the one X-Forwarded-Proto header of h; without
// one, the scheme is http.
func forwardedScheme(h http.Header) (https bool, err error) {
	switch v := h.Values(HeaderForwardedProto); len(v) {
	case 0:
		return false, nil
	case 1:
		https, err := parseScheme(v[0])
		if err != nil {
			return false, errors.New("The forwarded scheme (X-Forwarded-Proto) is malformed: " + err.Error())
		}
		return https, nil
	}
	return false, errors.New("The request has more than one X-Forwarded-Proto header")
}

// checkHost checks that v is a valid host with an optional port: a
// registered name (letters, digits, "-", ".", "_", "~"), an IPv4 address
// or a bracketed IPv6 address, then ":" and a port of 1 to 5 digits.
func checkHost(v string) error {
	if v == "" {
		return errors.New("it is empty")
	}
	host, port := v, ""
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return errors.New("it opens an IPv6 address it does not close")
		}
		host, port = v[1:end], v[end+1:]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
			return errors.New("it holds an invalid IPv6 address")
		}
		if port != "" && port[0] != ':' {
			return errors.New("it holds something after the IPv6 address")
		}
	} else {
		if i := strings.IndexByte(v, ':'); i >= 0 {
			host, port = v[:i], v[i:]
		}
		if host == "" {
			return errors.New("it has no host")
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
				return errors.New("the host holds a character a host name does not")
			}
		}
	}
	if port != "" {
		digits := port[1:]
		if digits == "" || len(digits) > 5 {
			return errors.New("it holds an invalid port")
		}
		for i := 0; i < len(digits); i++ {
			if digits[i] < '0' || digits[i] > '9' {
				return errors.New("it holds an invalid port")
			}
		}
	}
	return nil
}

// forwardedHost reads the one X-Forwarded-Host header of h, or else
// fallback (the request's own Host).
func forwardedHost(h http.Header, fallback string) (string, error) {
	switch v := h.Values(HeaderForwardedHost); len(v) {
	case 0:
		return fallback, nil
	case 1:
		if err := checkHost(v[0]); err != nil {
			return "", errors.New("The forwarded host (X-Forwarded-Host) is malformed: " + err.Error())
		}
		return v[0], nil
	}
	return "", errors.New("The request has more than one X-Forwarded-Host header")
}

// certificate reads the client certificate from values, the values of the
// -client-cert-header header: exactly one readable value, else none.
func (s *Service) certificate(values []string) *x509.Certificate {
	if s.certHeader == "" || len(values) != 1 {
		return nil
	}
	c, err := clientcert.Parse(s.certFormat, values[0])
	if err != nil {
		s.log.Debug("client certificate header unreadable", slog.String("header", s.certHeader), slog.String("error", err.Error()))
		return nil
	}
	return c
}
