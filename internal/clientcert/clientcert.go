// Package clientcert reads the TLS client certificate a reverse proxy
// forwards in a header (RFC 8705 certificate-bound tokens behind a proxy
// that terminates TLS).
package clientcert

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Format is how a header carries the certificate.
type Format string

// The formats of forwarded certificates.
const (
	// EscapedPEM is a URL-escaped PEM certificate: nginx's
	// $ssl_client_escaped_cert, Envoy ext_authz's source.certificate.
	EscapedPEM Format = "escaped-pem"
	// Base64DER is the DER certificate in standard base64: Caddy's
	// {http.request.tls.client.certificate_der_base64}.
	Base64DER Format = "base64-der"
	// XFCC is Envoy's x-forwarded-client-cert as SANITIZE_SET leaves it:
	// one element whose Cert (a URL-escaped PEM certificate) has the
	// element's Hash.
	XFCC Format = "xfcc"
)

// MaxLength bounds a header value before it is parsed.
const MaxLength = 32 << 10

// ParseFormat returns the Format named s ("" is EscapedPEM).
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case "":
		return EscapedPEM, nil
	case EscapedPEM, Base64DER, XFCC:
		return f, nil
	}
	return "", fmt.Errorf("client certificate format %q is not %s, %s or %s", s, EscapedPEM, Base64DER, XFCC)
}

// Parse reads the one certificate a header value carries in format f.
func Parse(f Format, value string) (*x509.Certificate, error) {
	if len(value) > MaxLength {
		return nil, errors.New("certificate header too long")
	}
	switch f {
	case EscapedPEM, "":
		return escapedPEM(value)
	case Base64DER:
		der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
		if err != nil {
			return nil, errors.New("certificate header is not base64")
		}
		return parseDER(der)
	case XFCC:
		return xfcc(value)
	}
	return nil, fmt.Errorf("unknown client certificate format %q", f)
}

func escapedPEM(value string) (*x509.Certificate, error) {
	text, err := url.PathUnescape(strings.TrimSpace(value))
	if err != nil {
		return nil, errors.New("certificate header is not URL-escaped")
	}
	if !strings.HasPrefix(text, "-----BEGIN CERTIFICATE-----") {
		return nil, errors.New("certificate header holds no PEM certificate")
	}
	block, rest := pem.Decode([]byte(text))
	if block == nil || block.Type != "CERTIFICATE" || len(block.Headers) > 0 {
		return nil, errors.New("certificate header holds no PEM certificate")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("certificate header holds more than one PEM block")
	}
	return parseDER(block.Bytes)
}

func parseDER(der []byte) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errors.New("certificate header holds no valid X.509 certificate")
	}
	return c, nil
}

// xfcc reads the certificate of an x-forwarded-client-cert value that
// Envoy set itself (forward_client_cert_details: SANITIZE_SET, with
// set_current_client_cert_details cert: true): exactly one element, with
// exactly one Hash and one Cert, the Hash being the hex SHA-256 of the
// Cert's DER. Envoy writes URI and DNS values (from the client's own
// certificate) unescaped, so a certificate can carry ",Cert=…" or
// ";Cert=…" in a SAN: a second element or pair is refused, and an injected
// Cert never matches the Hash Envoy computed.
func xfcc(value string) (*x509.Certificate, error) {
	elements, err := splitXFCC(value)
	if err != nil {
		return nil, err
	}
	if len(elements) != 1 {
		return nil, errors.New("x-forwarded-client-cert holds more than one element (want Envoy's SANITIZE_SET)")
	}
	var cert, hash string
	var certs, hashes int
	for _, kv := range elements[0] {
		switch {
		case strings.EqualFold(kv[0], "Cert"):
			cert = kv[1]
			certs++
		case strings.EqualFold(kv[0], "Hash"):
			hash = kv[1]
			hashes++
		}
	}
	if certs != 1 || hashes != 1 {
		return nil, errors.New("x-forwarded-client-cert element needs exactly one Cert and one Hash")
	}
	c, err := escapedPEM(cert)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(c.Raw)
	if !strings.EqualFold(hash, hex.EncodeToString(sum[:])) {
		return nil, errors.New("x-forwarded-client-cert Hash is not the Cert's")
	}
	return c, nil
}

// splitXFCC splits v into elements of key-value pairs, unquoting values.
func splitXFCC(v string) ([][][2]string, error) {
	var (
		elements [][][2]string
		pairs    [][2]string
	)
	for i := 0; ; {
		eq := strings.IndexByte(v[i:], '=')
		if eq < 0 {
			return nil, errors.New("x-forwarded-client-cert pair without =")
		}
		key := strings.TrimSpace(v[i : i+eq])
		if key == "" || strings.ContainsAny(key, `,;"`) {
			return nil, errors.New("x-forwarded-client-cert pair with an invalid key")
		}
		i += eq + 1
		var val strings.Builder
		if i < len(v) && v[i] == '"' {
			i++
			closed := false
			for i < len(v) {
				c := v[i]
				i++
				if c == '\\' && i < len(v) {
					val.WriteByte(v[i])
					i++
					continue
				}
				if c == '"' {
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return nil, errors.New("x-forwarded-client-cert value with an unclosed quote")
			}
			for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
				i++
			}
		} else {
			end := strings.IndexAny(v[i:], ",;")
			if end < 0 {
				end = len(v) - i
			}
			val.WriteString(strings.TrimSpace(v[i : i+end]))
			i += end
		}
		pairs = append(pairs, [2]string{key, val.String()})
		if i >= len(v) {
			elements = append(elements, pairs)
			return elements, nil
		}
		switch v[i] {
		case ';':
		case ',':
			elements = append(elements, pairs)
			pairs = nil
		default:
			return nil, errors.New("x-forwarded-client-cert value followed by junk")
		}
		i++
	}
}
