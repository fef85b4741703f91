// Command nethttp protects the same routes as examples/server with plain
// net/http and no router library: Guard.Protect wraps each handler.
//
//	go run ./examples/nethttp -issuer http://127.0.0.1:4444 -audience https://api.test
package main

import (
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/olympus/aegis/examples/internal/flagenv"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/scopes"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	issuer := flag.String("issuer", "", "issuer identifier (required)")
	audience := flag.String("audience", "", "audience tokens must carry (required)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := flagenv.Apply(flag.CommandLine, "AEGIS_", os.Getenv); err != nil {
		log.Error("bad environment", "error", err)
		os.Exit(2)
	}

	guard, err := middleware.New(middleware.Config{Issuer: *issuer, Audience: *audience, Logger: log})
	if err != nil {
		log.Error("bad configuration", "error", err)
		os.Exit(2)
	}
	mux := newMux(guard)
	log.Info("listening", "addr", *addr)
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		log.Error("server stopped", "error", err)
		os.Exit(1)
	}
}

func newMux(guard *middleware.Guard) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { reply(w, "ok") })
	mux.Handle("GET /data", guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reply(w, []string{"alpha", "beta"})
	}), scopes.All("data:read")))
	mux.Handle("POST /data", guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reply(w, "stored")
	}), scopes.All("data:write")))
	mux.Handle("GET /whoami", guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.PrincipalFrom(r.Context())
		reply(w, map[string]any{"kind": p.Kind, "subject": p.Subject, "client_id": p.ClientID, "scopes": p.Scopes, "email": p.Email})
	})))
	return mux
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
