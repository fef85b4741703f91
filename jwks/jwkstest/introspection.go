package jwkstest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// The test issuer's introspection endpoint answers like Ory Hydra's
// (RFC 7662): the tokens it minted (JWTs and opaque ones) are active until
// they expire or are revoked; anything else is {"active":false}.

// IntrospectionURL is the issuer's introspection endpoint. Unlike Hydra,
// the test issuer advertises it in its metadata (introspection_endpoint).
func (i *Issuer) IntrospectionURL() string { return i.URL + "/oauth2/introspect" }

// IntrospectionCalls counts the requests to the introspection endpoint.
func (i *Issuer) IntrospectionCalls() int64 { return i.introspections.Load() }

// RequireIntrospectionClient makes the endpoint demand these credentials,
// by HTTP Basic auth or in the form body; without it, none are needed (as
// on Hydra's admin port).
func (i *Issuer) RequireIntrospectionClient(id, secret string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.introspectionClient = &Client{ID: id, Secret: secret}
}

// ServeIntrospectionWith replaces the endpoint by h (an outage, errors,
// malformed answers); nil restores it. Calls are counted either way.
func (i *Issuer) ServeIntrospectionWith(h http.Handler) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.introspectionOverride = h
}

// Opaque mints an opaque token shaped like Hydra's (ory_at_….…) that stands
// for claims; only introspection can tell what it means.
func (i *Issuer) Opaque(claims map[string]any) string {
	var a, b [24]byte
	_, _ = rand.Read(a[:])
	_, _ = rand.Read(b[:])
	token := "ory_at_" + base64.RawURLEncoding.EncodeToString(a[:]) + "." + base64.RawURLEncoding.EncodeToString(b[:])
	i.remember(token, claims)
	return token
}

// OpaqueM2M mints an opaque client_credentials token.
func (i *Issuer) OpaqueM2M(clientID string, scopes ...string) string {
	return i.Opaque(i.Claims(clientID, clientID, scopes...))
}

// OpaqueUser mints an opaque token for a person, email under ext.
func (i *Issuer) OpaqueUser(subject, clientID, email string, scopes ...string) string {
	c := i.Claims(subject, clientID, scopes...)
	c["ext"] = map[string]any{"email": email}
	return i.Opaque(c)
}

// Revoke makes a token inactive, as POST /oauth2/revoke does on Hydra.
func (i *Issuer) Revoke(token string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	delete(i.minted, tokenKey(token))
}

func tokenKey(token string) [32]byte { return sha256.Sum256([]byte(token)) }

func (i *Issuer) remember(token string, claims map[string]any) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.minted == nil {
		i.minted = map[[32]byte]map[string]any{}
	}
	i.minted[tokenKey(token)] = claims
}

func (i *Issuer) serveIntrospection(w http.ResponseWriter, r *http.Request) {
	i.introspections.Add(1)
	i.mu.Lock()
	override, required := i.introspectionOverride, i.introspectionClient
	i.mu.Unlock()
	if override != nil {
		override.ServeHTTP(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil || r.PostForm.Get("token") == "" {
		tokenError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if required != nil {
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if id != required.ID || secret != required.Secret {
			tokenError(w, http.StatusUnauthorized, "invalid_client")
			return
		}
	}
	i.mu.Lock()
	claims, known := i.minted[tokenKey(r.PostForm.Get("token"))]
	i.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !known || expired(claims, i.cfg.Now()) {
		_, _ = w.Write([]byte(`{"active":false}`))
		return
	}
	_ = json.NewEncoder(w).Encode(hydraAnswer(claims))
}

func expired(claims map[string]any, now time.Time) bool {
	var exp float64
	switch v := claims["exp"].(type) {
	case int64:
		exp = float64(v)
	case int:
		exp = float64(v)
	case float64:
		exp = v
	default:
		return false
	}
	return float64(now.Unix()) >= exp
}

// hydraAnswer shapes claims the way Hydra's introspection does: scope as a
// space-separated string, token_type and token_use, ext only when not empty.
func hydraAnswer(claims map[string]any) map[string]any {
	a := map[string]any{"active": true, "token_type": "Bearer", "token_use": "access_token"}
	for name, v := range claims {
		switch name {
		case "scp":
			if s, ok := v.([]string); ok {
				a["scope"] = strings.Join(s, " ")
				continue
			}
			a[name] = v
		case "ext":
			if m, ok := v.(map[string]any); ok && len(m) == 0 {
				continue
			}
			a[name] = v
		default:
			a[name] = v
		}
	}
	return a
}
