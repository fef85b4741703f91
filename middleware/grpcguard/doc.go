// Package grpcguard is Aegis for gRPC servers: unary and stream server
// interceptors that admit calls bearing a valid OAuth2 access token and the
// scopes their method needs.
//
// It is a thin adapter over the transport-agnostic core (package
// middleware/core), so gRPC calls get exactly the validation, caller
// classification, scope checks, rate limits, metrics (Observer) and
// decision logs of the HTTP middleware. A Guard may even share its
// core.Checker with a middleware.Guard (Config.Checker), so that both
// transports charge one rate limit and share one verified-token cache.
//
// The token is read from the call's single "authorization" metadata value,
// "Bearer <token>" or "DPoP <token>" with a case-insensitive scheme, as the
// HTTP middleware reads the Authorization header. Requirements are
// declared per full method name ("/pkg.Service/Method") or per service
// ("/pkg.Service/*"); a method listed nowhere is refused unless
// Config.AllowUnlisted is set, and Config.Public names the methods that
// need no token at all.
//
// Refusals become gRPC statuses:
//
//	no token, a malformed authorization value,
//	an invalid or expired token, a DPoP
//	proof missing, invalid or without the
//	server's nonce, a token presented
//	against its binding (DPoP or
//	certificate)                           Unauthenticated
//	missing scope, unlisted method         PermissionDenied
//	rate limit exhausted                   ResourceExhausted (RetryInfo)
//	keys, introspection, the rate-limit
//	store or the DPoP replay store
//	unavailable                            Unavailable (RetryInfo)
//
// Every refusal's status carries an errdetails.ErrorInfo (domain "aegis",
// reason the upper-cased aegis.Reason, e.g. "TOKEN_EXPIRED"), and a
// RetryInfo when the caller should retry later. The challenges the HTTP
// middleware would send in WWW-Authenticate (RFC 6750's Bearer and, unless
// DPoP is off, RFC 9449's DPoP: see below) are sent in the
// "www-authenticate" trailer, and the rate-limit fields (ratelimit-policy,
// ratelimit, x-ratelimit-*) in the header metadata. Status messages are
// Aegis's own sentences: they never contain the token nor the proof.
//
// Handlers read the caller with core.PrincipalFrom (or
// middleware.PrincipalFrom) on the call's context.
//
// # Sender-constrained tokens: DPoP and mTLS
//
// Tokens bound to a key or a certificate (a cnf claim, in a JWT or an
// introspection answer) are checked by the core exactly as over HTTP.
//
// A DPoP-bound token (RFC 9449, cnf.jkt) is presented as
// "authorization: DPoP <token>" with exactly one "dpop" metadata value
// holding the proof, a JWT the client signs for each call with the key the
// token is bound to. A call with more than one dpop value is refused
// (invalid_dpop_proof). gRPC calls are HTTP/2 POSTs, so the proof's htm is
// "POST", and its htu is the method's URL:
//
//	htu = Config.BaseURI + full method name
//	    = "https://api.example.com" + "/pkg.Service/Method"
//
// Config.BaseURI is the scheme and host (and port) clients address. When it
// is unset, it is taken from each call: "https://" over a TLS transport,
// "http://" otherwise, followed by the call's :authority (the host and port
// the client dialed, or what it set with grpc.WithAuthority). Set BaseURI
// whenever a proxy or load balancer stands between clients and the server;
// as the :authority is the client's to choose, setting it is also the
// stricter choice. The htu is compared as RFC 9449 §4.3 says (scheme and
// host case-insensitive, default ports dropped, no query).
//
// The DPoP policy is the Checker's default (Config.DPoP.Policy, dpop.Allow
// unless set, or a shared Checker's), or a method's own
// (Config.DPoPMethods): dpop.Allow accepts Bearer tokens and DPoP-bound
// tokens with their proofs, dpop.Require only the latter, dpop.Off only
// the former. A proof's jti is good for one call (an in-memory replay
// store unless Config.DPoP.Verifier shares another); a Verifier configured
// with dpop.NonceConfig demands server nonces (RFC 9449 §8).
//
// A certificate-bound token (RFC 8705, cnf x5t#S256) is accepted only over
// TLS, from a client that presented the certificate it names: configure
// the server's credentials.NewTLS with a tls.Config whose ClientAuth asks
// for client certificates (tls.RequestClientCert or stricter). The client's
// certificate is taken from peer.FromContext's credentials.TLSInfo.
//
// Refusals carry the challenges middleware.Guard sends, one
// "www-authenticate" trailer value each: under dpop.Allow the Bearer
// challenge, then the DPoP one (`DPoP realm="api", algs="ES256 …"`), the
// error in the challenge of the scheme the call used (DPoP for a proof's
// own errors, invalid_dpop_proof and use_dpop_nonce); under dpop.Require
// the DPoP one only; under dpop.Off the Bearer one only. A call that used
// the DPoP scheme, or was refused with use_dpop_nonce, gets the server's
// current nonce, when its Verifier demands nonces, in "dpop-nonce": in the
// header metadata of an admitted call, in the trailer of a refused one.
// Handlers see how the token was bound with Principal.DPoPBound and
// Principal.CertificateBound.
//
// It is a nested module (github.com/olympus/aegis/middleware/grpcguard) so
// that google.golang.org/grpc enters only the builds of programs that use
// it.
package grpcguard
