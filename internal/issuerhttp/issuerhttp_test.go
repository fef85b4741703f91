package issuerhttp

import (
	"context"
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
