// Package edge is the sidecar's check chain for the edge: the decisions of
// sidecar/proxy, from the same rules (sidecar/proxy/check, sidecar/dpop,
// sidecar/token/atjwt), over a small [Host] that the Cloudflare Worker
// (sidecar/edge/worker, GOOS=js GOARCH=wasm) backs with WebCrypto, fetch
// and Durable Objects. It holds no syscall/js and no net/http, so it
// builds and tests on every platform.
//
// # Use
//
//	cfg, err := edge.LoadConfig(getenv) // KEYLESS_PROXY etc.
//	h, err := edge.New(cfg, host, nil)
//	fwd, res := h.Serve(ctx, &edge.Request{...})
//	// res != nil: answer it; else fetch fwd.URL with fwd.Header
//
// # Differences from the process proxy
//
// What the edge does not do is refused or documented, never skipped
// silently: rate limits (use Cloudflare rate limiting rules), WebSocket
// upgrades and tickets (404 for the ticket path; Upgrade is stripped),
// response redaction (routes with redact answer 502), audit lines and
// metrics (Workers logs and analytics instead). See README.md.
package edge
