package issuerhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url       string
		allowHTTP bool
		ok        bool
	}{
		{url: "https://id.example.com", ok: true},
		{url: "http://127.0.0.1:4444", ok: true},
		{url: "http://[::1]:4444", ok: true},
		{url: "http://LOCALHOST/x", ok: true},
		{url: "http://hydra:4444"},
		{url: "http://hydra:4444", allowHTTP: true, ok: true},
		{url: "ftp://id.example.com"},
		{url: "/relative"},
		{url: "::"},
	}
	for _, tc := range tests {
		err := CheckURL(tc.url, tc.allowHTTP)
		if tc.ok {
			assert.NoError(t, err, tc.url)
		} else {
			assert.Error(t, err, tc.url)
		}
	}
}

func TestMetadataURLs(t *testing.T) {
	assert.Equal(t, []string{
		"https://id.example.com/.well-known/openid-configuration",
		"https://id.example.com/.well-known/oauth-authorization-server",
	}, MetadataURLs("https://id.example.com/"))
	assert.Equal(t, []string{
		"https://id.example.com/t/a/.well-known/openid-configuration",
		"https://id.example.com/.well-known/oauth-authorization-server/t/a",
	}, MetadataURLs("https://id.example.com/t/a"))
}

func TestDiscoverAndGet(t *testing.T) {
	var base string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":"%s/jwks","introspection_endpoint":"%s/introspect"}`, base, base, base)
		case "/big":
			fmt.Fprint(w, strings.Repeat("x", 100))
		case "/slow":
			<-r.Context().Done()
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	base = srv.URL
	meta, err := Discover(context.Background(), NewClient(), base, time.Second, 1<<10)
	require.NoError(t, err)
	assert.Equal(t, Metadata{Issuer: base, JWKSURI: base + "/jwks", IntrospectionEndpoint: base + "/introspect"}, meta)

	_, _, err = Get(context.Background(), NewClient(), base+"/big", time.Second, 10, "*/*")
	assert.ErrorContains(t, err, "over 10 bytes")
	_, _, err = Get(context.Background(), NewClient(), base+"/slow", 20*time.Millisecond, 10, "*/*")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	_, _, err = Get(context.Background(), NewClient(), base+"/missing", time.Second, 10, "*/*")
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestHardenKeepsRedirectsWithinTheOrigin(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "elsewhere") }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL, http.StatusFound)
		case "/near":
			http.Redirect(w, r, "/here", http.StatusFound)
		default:
			fmt.Fprint(w, "here")
		}
	}))
	defer srv.Close()
	var ownCalls int
	own := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { ownCalls++; return nil }}
	for _, c := range []*http.Client{nil, {}, own} {
		h := Harden(c)
		_, _, err := Get(context.Background(), h, srv.URL+"/away", time.Second, 100, "*/*")
		assert.ErrorContains(t, err, "another origin")
		body, _, err := Get(context.Background(), h, srv.URL+"/near", time.Second, 100, "*/*")
		require.NoError(t, err)
		assert.Equal(t, "here", string(body))
	}
	assert.Equal(t, 1, ownCalls, "the caller's own policy still runs after ours")
	assert.Nil(t, own.CheckRedirect(nil, nil), "the caller's client is not modified")
}

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want Metadata
		err  bool
	}{
		{name: "Hydra's members", doc: `{"issuer":"https://i.example","jwks_uri":"https://i.example/.well-known/jwks.json","introspection_endpoint":"https://i.example/i","other":{"a":[1]}}`,
			want: Metadata{Issuer: "https://i.example", JWKSURI: "https://i.example/.well-known/jwks.json", IntrospectionEndpoint: "https://i.example/i"}},
		{name: "members absent", doc: `{}`},
		{name: "null members are absent", doc: `{"issuer":"https://i.example","jwks_uri":null,"introspection_endpoint":null}`, want: Metadata{Issuer: "https://i.example"}},
		// As a JWK's members (hardening round 2, point 5): a name that
		// differs from a member Aegis reads only in case is refused, not
		// ignored, so that no reader can see other metadata.
		{name: "names differing only in case are refused", doc: `{"ISSUER":"https://evil.example","Jwks_Uri":"https://evil.example/k"}`, err: true},
		{name: "a case variant holding a number is refused too", doc: `{"issUer":0}`, err: true},
		{name: "other names are ignored", doc: `{"issuer":"https://i.example","issuers":1,"ISSUER_X":2}`, want: Metadata{Issuer: "https://i.example"}},
		{name: "duplicate issuer", doc: `{"issuer":"https://evil.example","issuer":"https://i.example"}`, err: true},
		{name: "duplicate jwks_uri", doc: `{"jwks_uri":"https://i.example/k","jwks_uri":"https://evil.example/k"}`, err: true},
		{name: "issuer not a string", doc: `{"issuer":["https://i.example"]}`, err: true},
		{name: "not an object", doc: `["https://i.example"]`, err: true},
		{name: "trailing garbage", doc: `{"issuer":"https://i.example"} {}`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMetadata([]byte(tt.doc))
			if tt.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// FuzzParseMetadata: whatever a metadata document holds, ParseMetadata
// answers without panicking, accepts only valid JSON, and reads the same
// issuer as encoding/json when the document names it once, exactly.
func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{`{"issuer":"https://i.example","jwks_uri":"https://i.example/k"}`, `{}`, `{"issuer":1}`,
		`{"issuer":"a","issuer":"b"}`, `{"introspection_endpoint":"https://i.example/\u0069"}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, err := ParseMetadata(doc)
		if err != nil {
			return
		}
		require.True(t, json.Valid(doc), "accepted invalid JSON %q", doc)
		var want struct {
			Issuer string `json:"issuer"`
		}
		require.NoError(t, json.Unmarshal(doc, &want))
		if bytes.Count(bytes.ToLower(doc), []byte("issuer")) == 1 && bytes.Contains(doc, []byte(`"issuer":`)) {
			assert.Equal(t, want.Issuer, got.Issuer)
		}
	})
}

// TestHardening2_CredentialsInURLsRedacted (issue 13, point 6): Redact is
// the one helper every URL goes through before a log line or an error: the
// user info and the query values go, the rest stays.
func TestHardening2_CredentialsInURLsRedacted(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://svc:S3cret@issuer.test/jwks", "https://xxxxx@issuer.test/jwks"},
		{"https://T0ken@issuer.test/jwks", "https://xxxxx@issuer.test/jwks"},
		{"https://issuer.test/jwks?api_key=Q5ecret&sig=Z9&flag", "https://issuer.test/jwks?api_key=xxxxx&sig=xxxxx&flag"},
		{"https://issuer.test/jwks?a=1&a=2", "https://issuer.test/jwks?a=xxxxx&a=xxxxx"},
		{"https://issuer.test/jwks?%zz=Q5ecret", "https://issuer.test/jwks?xxxxx"},
		{"https://issuer.test/jwks#Q5ecret", "https://issuer.test/jwks#xxxxx"},
		{"http://svc:S3cret@127.0.0.1:8080/p?k=Q5ecret#f", "http://xxxxx@127.0.0.1:8080/p?k=xxxxx#xxxxx"},
		{"https://issuer.test:8443/oauth2/introspect", "https://issuer.test:8443/oauth2/introspect"},
		{"https://issuer.test", "https://issuer.test"},
		{"", ""},
		{"http://svc:S3cret@[::1", "[unparseable URL]"},
		{"svc:S3cret@h?k=Q5ecret", "svc:xxxxx?k=xxxxx"},
	}
	for _, tt := range tests {
		got := Redact(tt.in)
		assert.Equal(t, tt.want, got, tt.in)
		for _, secret := range []string{"S3cret", "Q5ecret", "T0ken", "Z9"} {
			assert.NotContains(t, got, secret, tt.in)
		}
	}
	for _, raw := range []string{"ftp://svc:S3cret@h/?k=Q5ecret", "http://svc:S3cret@h.example/?k=Q5ecret", "svc:S3cret@h?k=Q5ecret"} {
		err := CheckURL(raw, false)
		require.Error(t, err, raw)
		assert.NotContains(t, err.Error(), "S3cret", raw)
		assert.NotContains(t, err.Error(), "Q5ecret", raw)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	addr := srv.Listener.Addr().String()
	for _, u := range []string{srv.URL + "/x?k=Q5ecret", "http://svc:S3cret@" + addr + "/x?k=Q5ecret"} {
		_, _, err := Get(context.Background(), srv.Client(), u, time.Second, 1<<10, "application/json")
		require.Error(t, err, u)
		assert.Contains(t, err.Error(), "status 418")
		assert.NotContains(t, err.Error(), "S3cret")
		assert.NotContains(t, err.Error(), "Q5ecret")
	}
	srv.Close()
	_, _, err := Get(context.Background(), http.DefaultClient, "http://svc:S3cret@"+addr+"/x?k=Q5ecret", time.Second, 1<<10, "application/json")
	require.Error(t, err, "a transport error")
	assert.NotContains(t, err.Error(), "S3cret")
	assert.NotContains(t, err.Error(), "Q5ecret")
}
