package jwkstest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Client is an OAuth2 client registered with the test issuer's token
// endpoint for the client_credentials grant.
type Client struct {
	ID     string
	Secret string
	// Scopes the client may ask for; a request without scope gets them all.
	Scopes []string
}

// TokenURL is the issuer's token endpoint (client_credentials only).
func (i *Issuer) TokenURL() string { return i.URL + "/oauth2/token" }

// TokenRequests counts the requests to the token endpoint so far.
func (i *Issuer) TokenRequests() int64 { return i.tokenRequests.Load() }

// AddClient registers c with the token endpoint.
func (i *Issuer) AddClient(c Client) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.clients == nil {
		i.clients = map[string]Client{}
	}
	i.clients[c.ID] = c
}

// serveToken implements the client_credentials grant (RFC 6749 §4.4) with
// client_secret_basic or client_secret_post, and an optional audience.
func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	i.tokenRequests.Add(1)
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	i.mu.Lock()
	c, known := i.clients[id]
	i.mu.Unlock()
	if !known || c.Secret == "" || c.Secret != secret {
		tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	granted := c.Scopes
	if asked := strings.Fields(r.PostForm.Get("scope")); len(asked) > 0 {
		for _, s := range asked {
			if !slices.Contains(c.Scopes, s) {
				tokenError(w, http.StatusBadRequest, "invalid_scope")
				return
			}
		}
		granted = asked
	}
	claims := i.Claims(c.ID, c.ID, granted...)
	if aud := r.PostForm["audience"]; len(aud) > 0 {
		claims["aud"] = aud
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": i.Sign(claims),
		"token_type":   "bearer",
		"expires_in":   int64(i.cfg.TokenLifetime / time.Second),
		"scope":        strings.Join(granted, " "),
	})
}

func tokenError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}
