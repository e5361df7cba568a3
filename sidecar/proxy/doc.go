// Package proxy is keyless's constrained API proxy (the sidecar): it stands
// between micro apps and the backend, checks every DPoP proof and every
// DPoP-bound lease, and forwards only what passed, with the caller's
// identity in headers the client cannot forge.
//
// # Use
//
// Build a [Proxy] with [New] from a [Config] (the `proxy:` section of
// keyless.yaml, or the file of `keyless proxy --config`; see
// testdata/proxy.yaml) and [Options] (token verifier, shared stores, clock,
// logger). A Proxy is an http.Handler; serve it with [Proxy.NewServer] and
// serve [Proxy.AdminHandler] (/metrics, /healthz, /readyz) on a private
// listener:
//
//	p, err := proxy.New(cfg, proxy.Options{
//		Tokens:      &token.JWTVerifier{Keys: keys, Issuer: iss, Audience: cfg.PublicURL},
//		Revocations: sharedRevocations, // and Replay, Limiter, Tickets, NonceKey when replicated
//		Logger:      auditLogger,
//	})
//	srv := p.NewServer(p)
//
// # The check chain
//
// [Proxy.ServeHTTP] runs the steps of serve, in this order, each a small
// method with its own tests; the first refusal is rendered by one function
// (render) as WWW-Authenticate + {error, error_description}:
//
//  0. checkAudit: while audit lines cannot be written, 503 (audit.on_failure).
//  1. checkMethod: standard methods only (405).
//  2. checkPath: the raw path, canonicalized once by [CanonicalPath];
//     ambiguous forms are refused (400). Routes match this form, and it is
//     what the upstream receives. The query never takes part in matching;
//     one the upstream could parse differently is refused (400).
//     checkHost: other virtual hosts get 421; checkFraming: an HTTP/1.0
//     body needs Content-Length.
//  3. preflight (CORS, answered here) and the WebSocket ticket endpoint.
//  4. matchRoute, checkUpgrade (only `Upgrade: websocket`, never h2c).
//  5. authenticate: checkScheme (exactly one `Authorization: DPoP`),
//     checkToken (lease verified, cached by hash, revocation on every
//     request), the cheap limit before the signature (checkKeyQuota: the
//     key's live replay entries, 429 past them), checkProof (RFC 9449 section 4.3 through the dpop package,
//     htu = Config.PublicURL + raw path, ath, cnf.jkt, replay, nonce) — or
//     redeemTicket for a browser WebSocket.
//  6. authorize: 404/405 for unrouted requests, then scopes (403).
//  7. checkOrigin (per-app CORS, CSWSH), rateLimit (per subject, then per
//     app), checkBody (size and content type of every body, whatever its
//     framing), access_token parameters.
//  8. preview (preview leases are answered from examples) or forward:
//     httputil.ReverseProxy with Rewrite, strip then inject identity,
//     response headers stripped and JSON redacted.
//
// Every refusal is answered before anything reaches the upstream, and
// produces one audit line (never the token) and a metric.
//
// The rules of the steps (configuration, paths, routes, scheme, lease
// rules, scopes, header lists, refusals) live in [check], without
// net/http or metrics, so the edge Worker (sidecar/edge) runs the same
// ones; this package adds serving, forwarding, stores and metrics.
package proxy
