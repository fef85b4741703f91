package hydra

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

// tokenHook is a Hydra token hook (OAUTH2_TOKEN_HOOK_URL) for the DPoP
// bridge: it binds the tokens of the clients it was told about to a key,
// by answering their token requests with a session whose access token
// carries cnf.jkt. It is a test bridge only: the hook never sees the token
// request's DPoP header, so it cannot check that the client holds the key;
// it binds by client ID to a thumbprint it was given.
type tokenHook struct {
	mu    sync.Mutex
	jkt   map[string]string // client ID → thumbprint
	calls int
}

func (h *tokenHook) bind(clientID, thumbprint string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.jkt[clientID] = thumbprint
}

func (h *tokenHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Request struct {
			ClientID string `json:"client_id"`
		} `json:"request"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
		http.Error(w, "bad hook request", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.calls++
	jkt, ok := h.jkt[in.Request.ClientID]
	h.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNoContent) // the token as Hydra made it
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"session": map[string]any{"access_token": map[string]any{"cnf": map[string]any{"jkt": jkt}}}})
}

func (h *tokenHook) callCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

// callDPoP sends GET path to the server with "Authorization: DPoP token"
// and proof in the DPoP header.
func (s *server) callDPoP(t *testing.T, path, token, proof string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "DPoP "+token)
	req.Header.Set("DPoP", proof)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// TestHydraDPoPBridge: a Hydra of its own, whose token hook binds a
// client_credentials token to key K (a top-level cnf.jkt, allowed by
// OAUTH2_ALLOWED_TOP_LEVEL_CLAIMS=cnf), issues a token that examples/server
// accepts with a DPoP proof of K and refuses as a Bearer token or with a
// proof of another key. Hydra does not check DPoP proofs itself
// (ory/hydra#3235); this is a bridge for the test, not a way to run Hydra.
func TestHydraDPoPBridge(t *testing.T) {
	needServer(t)
	hook := &tokenHook{jkt: map[string]string{}}
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()
	h, err := startHydra(suite.tmp, suite.hydraBin, "hydra-dpop",
		"OAUTH2_TOKEN_HOOK_URL="+hookSrv.URL+"/hook",
		"OAUTH2_ALLOWED_TOP_LEVEL_CLAIMS=cnf")
	if h != nil && h.proc != nil {
		t.Cleanup(h.proc.stop)
	}
	require.NoError(t, err, "a second Hydra with the token hook")
	srv := startServer(t, "server-dpop", "-issuer", h.public, "-audience", apiAudience)

	key := jwkstest.NewKey(jwks.ES256)
	other := jwkstest.NewKey(jwks.ES256)
	client := h.createClient(t, m2mClientSpec("dpop-bound-sync", []string{"data:read"}, apiAudience))
	hook.bind(client.ID, key.Thumbprint())
	token := h.clientCredentials(t, client, []string{"data:read"}, apiAudience)
	assert.Positive(t, hook.callCount(), "Hydra called the token hook")
	_, claims := jwtParts(t, token)
	require.Equal(t, map[string]any{"jkt": key.Thumbprint()}, claims["cnf"], "a top-level cnf.jkt in the token")

	target := srv.base + "/data"
	proof := func(k *jwkstest.Key) string {
		return k.DPoPProof(jwkstest.DPoPProof{Method: http.MethodGet, URL: target, AccessToken: token})
	}
	tests := []struct {
		name   string
		send   func() response
		status int
		scheme string // of the challenge that carries the error
		err    string
	}{
		{name: "with a proof of K", send: func() response { return srv.callDPoP(t, "/data", token, proof(key)) }, status: http.StatusOK},
		{name: "as a Bearer token", send: func() response { return srv.call(t, http.MethodGet, "/data", token) },
			status: http.StatusUnauthorized, scheme: "Bearer", err: "invalid_token"},
		{name: "with a proof of another key", send: func() response { return srv.callDPoP(t, "/data", token, proof(other)) },
			status: http.StatusUnauthorized, scheme: "DPoP", err: "invalid_dpop_proof"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.send()
			require.Equal(t, tt.status, r.status, "%s", r)
			if tt.err == "" {
				return
			}
			var found bool
			for _, v := range r.header.Values("WWW-Authenticate") {
				scheme, params, err := parseChallenge(v)
				require.NoError(t, err)
				if scheme == tt.scheme {
					found = true
					assert.Equal(t, tt.err, params["error"], "%s", r)
				}
			}
			assert.True(t, found, "a %s challenge: %s", tt.scheme, r)
		})
	}
}
