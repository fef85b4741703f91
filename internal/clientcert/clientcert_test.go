package clientcert

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func hash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

func pemOf(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// escape percent-encodes as nginx's $ssl_client_escaped_cert does: every
// byte but unreserved characters.
func escape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

func TestParse(t *testing.T) {
	t.Parallel()
	leaf, other := jwkstest.NewClientCertificate("leaf").Leaf, jwkstest.NewClientCertificate("other").Leaf
	esc := escape(pemOf(leaf))
	tests := []struct {
		name    string
		format  Format
		value   string
		want    *x509.Certificate
		wantErr string
	}{
		{"escaped PEM", EscapedPEM, esc, leaf, ""},
		{"escaped PEM, default format", "", esc, leaf, ""},
		{"unescaped PEM lines are not a header value", EscapedPEM, "%ZZ", nil, "not URL-escaped"},
		{"escaped PEM of a key", EscapedPEM, escape("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), nil, "no PEM certificate"},
		{"two certificates", EscapedPEM, escape(pemOf(leaf) + pemOf(other)), nil, "more than one"},
		{"PEM of garbage", EscapedPEM, escape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}))), nil, "no valid X.509"},
		{"empty", EscapedPEM, "", nil, "no PEM certificate"},
		{"base64 DER", Base64DER, base64.StdEncoding.EncodeToString(leaf.Raw), leaf, ""},
		{"base64url DER", Base64DER, base64.RawURLEncoding.EncodeToString(leaf.Raw), nil, "not base64"},
		{"XFCC as Envoy sets it", XFCC, `Hash=` + hash(leaf) + `;Cert="` + esc + `";Subject="CN=leaf";URI=spiffe://a`, leaf, ""},
		{"XFCC, unquoted cert, hash in capitals", XFCC, `By=spiffe://a;Hash=` + strings.ToUpper(hash(leaf)) + `;Cert=` + esc, leaf, ""},
		{"XFCC, quoted commas and escapes", XFCC, `Hash=` + hash(leaf) + `;Subject="CN=a,O=\"b;c\"" ;Cert="` + esc + `"`, leaf, ""},
		{"XFCC, no Hash", XFCC, `Cert="` + esc + `"`, nil, "exactly one Cert and one Hash"},
		{"XFCC, Hash of another certificate", XFCC, `Hash=` + hash(other) + `;Cert="` + esc + `"`, nil, "Hash is not the Cert's"},
		{"XFCC, a Cert injected by a URI SAN as a second element", XFCC,
			`Hash=` + hash(other) + `;Cert="` + escape(pemOf(other)) + `";URI=spiffe://x,Hash=` + hash(leaf) + `;Cert=` + esc, nil, "more than one element"},
		{"XFCC, a Cert injected by a URI SAN as a second pair", XFCC,
			`Hash=` + hash(other) + `;Cert="` + escape(pemOf(other)) + `";URI=spiffe://x;Cert=` + esc, nil, "exactly one Cert and one Hash"},
		{"XFCC, a Hash and Cert injected after Envoy's", XFCC,
			`Hash=` + hash(other) + `;URI=x;Hash=` + hash(leaf) + `;Cert=` + esc, nil, "exactly one Cert and one Hash"},
		{"XFCC, two elements", XFCC, `Hash=` + hash(leaf) + `;Cert="` + esc + `",Hash=` + hash(leaf) + `;Cert="` + esc + `"`, nil, "more than one element"},
		{"XFCC, unclosed quote", XFCC, `Cert="` + esc, nil, "unclosed quote"},
		{"XFCC, no =", XFCC, `Cert`, nil, "without ="},
		{"XFCC, junk after quote", XFCC, `Cert="` + esc + `"x`, nil, "junk"},
		{"XFCC, empty key", XFCC, `=x`, nil, "invalid key"},
		{"escaped PEM after a preamble", EscapedPEM, escape("junk\n") + esc, nil, "no PEM certificate"},
		{"too long", EscapedPEM, strings.Repeat("A", MaxLength+1), nil, "too long"},
		{"unknown format", Format("der"), esc, nil, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.format, tt.value)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want.Raw, got.Raw)
		})
	}
}

func TestParseFormat(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Format{"": EscapedPEM, "escaped-pem": EscapedPEM, "base64-der": Base64DER, "xfcc": XFCC} {
		got, err := ParseFormat(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := ParseFormat("pem")
	assert.ErrorContains(t, err, `"pem"`)
}

func FuzzParse(f *testing.F) {
	f.Add(`Cert="%2D%2D";Hash=1`)
	f.Add(`a=b,c="d\"e";f=g`)
	f.Fuzz(func(t *testing.T, v string) {
		for _, format := range []Format{EscapedPEM, Base64DER, XFCC} {
			c, err := Parse(format, v)
			assert.True(t, (c == nil) != (err == nil))
		}
	})
}
