package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/nonce"
	"github.com/keyless-dev/keyless/sidecar/token"
)

func nonceOn(key nonce.StaticKey) harnessOption {
	return func(h *harness) {
		h.cfg.DPoP.Nonce = NonceConfig{Enabled: true, Rotate: time.Minute}
		h.opts.NonceKey = key
	}
}

// TestNonces: RFC 9449 section 8, docs/security.md#a12 and the 401/nonce
// convention (exactly one DPoP-Nonce).
func TestNonces(t *testing.T) {
	key := nonce.RandomKey()
	h := newHarness(t, nonceOn(key))
	send := func(n string) *http.Response {
		tok := h.lease(nil, "orders:read")
		r := h.request("GET", "/v1/orders")
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", h.proofWith(h.signer, "GET", publicURL+"/v1/orders", dpop.ProofOptions{AccessToken: tok, Nonce: n}))
		return h.do(r)
	}
	// No nonce: use_dpop_nonce with exactly one fresh nonce, NF.
	res := send("")
	checkRefusal(t, res, 401, "use_dpop_nonce")
	vals := res.Header.Values("DPoP-Nonce")
	if len(vals) != 1 || vals[0] == "" {
		t.Fatalf("DPoP-Nonce = %q, want exactly one", vals)
	}
	if !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "DPoP-Nonce") {
		t.Error("DPoP-Nonce not exposed to browsers")
	}
	n0 := vals[0]
	// Forged and stale nonces: use_dpop_nonce, never invalid_dpop_proof.
	for _, bad := range []string{"forged", strings.Repeat("A", len(n0))} {
		checkRefusal(t, send(bad), 401, "use_dpop_nonce")
	}
	if h.echo.hits.Load() != 0 {
		t.Fatal("forwarded without a valid nonce")
	}
	// The nonce works, and the 200 carries the current one.
	res = send(n0)
	if res.StatusCode != 200 || res.Header.Get("DPoP-Nonce") != n0 {
		t.Fatalf("with nonce: %d, DPoP-Nonce %q", res.StatusCode, res.Header.Get("DPoP-Nonce"))
	}
	// Rotation: the previous nonce is still accepted, the response
	// carries the new one; two rotations later it is stale.
	h.clock.Advance(time.Minute)
	res = send(n0)
	n1 := res.Header.Get("DPoP-Nonce")
	if res.StatusCode != 200 || n1 == n0 || n1 == "" {
		t.Fatalf("previous nonce: %d, new nonce %q", res.StatusCode, n1)
	}
	h.clock.Advance(time.Minute)
	res = send(n0)
	checkRefusal(t, res, 401, "use_dpop_nonce")
	// A replica with the same key accepts the nonce.
	p2, err := New(h.cfg, h.opts)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := newServer(t, p2)
	n2 := res.Header.Get("DPoP-Nonce")
	tok := h.lease(nil, "orders:read")
	r, _ := http.NewRequest("GET", srv2.URL+"/v1/orders", nil)
	r.Host = "api.example.test"
	r.Header.Set("Authorization", "DPoP "+tok)
	r.Header.Set("DPoP", h.proofWith(h.signer, "GET", publicURL+"/v1/orders", dpop.ProofOptions{AccessToken: tok, Nonce: n2}))
	if res := h.do(r); res.StatusCode != 200 {
		t.Errorf("replica 2 refused replica 1's nonce: %d", res.StatusCode)
	}
}

func TestPreflight(t *testing.T) {
	h := newHarness(t)
	r := h.request("OPTIONS", "/v1/orders")
	r.Header.Set("Origin", appOrigin)
	r.Header.Set("Access-Control-Request-Method", "GET")
	r.Header.Set("Access-Control-Request-Headers", "authorization, dpop")
	res := h.do(r)
	if res.StatusCode != 204 {
		t.Fatalf("status %d", res.StatusCode)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":   appOrigin,
		"Access-Control-Allow-Headers":  "Authorization, DPoP, Content-Type",
		"Access-Control-Expose-Headers": exposeHeaders,
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if h.echo.hits.Load() != 0 {
		t.Error("preflight forwarded")
	}
	// The app's own origin reads the response and its errors.
	r = h.authed("GET", "/v1/orders", "orders:read")
	r.Header.Set("Origin", appOrigin)
	res = h.do(r)
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Errorf("status %d, ACAO %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}
	r = h.request("GET", "/v1/orders")
	r.Header.Set("Origin", appOrigin)
	res = h.do(r)
	if res.StatusCode != 401 || res.Header.Get("Access-Control-Allow-Origin") != appOrigin ||
		res.Header.Get("Access-Control-Expose-Headers") != exposeHeaders {
		t.Errorf("browser 401: %d, ACAO %q, expose %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), res.Header.Get("Access-Control-Expose-Headers"))
	}
}

func TestRateLimitHeaders(t *testing.T) {
	h := newHarness(t)
	var last *http.Response
	for i := 0; i < 3; i++ {
		last = h.do(h.authed("GET", "/limited", "orders:read"))
		if i < 2 && last.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, last.StatusCode)
		}
		if i == 1 && last.Header.Get("RateLimit-Remaining") != "0" {
			t.Errorf("RateLimit-Remaining = %q after 2 of 2", last.Header.Get("RateLimit-Remaining"))
		}
	}
	if last.StatusCode != 429 || last.Header.Get("Retry-After") != "1" || last.Header.Get("RateLimit-Limit") != "2" {
		t.Errorf("429: status %d Retry-After %q RateLimit-Limit %q", last.StatusCode, last.Header.Get("Retry-After"), last.Header.Get("RateLimit-Limit"))
	}
	// Another subject of the same app has its own bucket.
	if c := h.do(h.withToken("GET", "/limited", h.lease(func(s *token.Spec) { s.Subject = "bob" }, "orders:read"))).StatusCode; c != 200 {
		t.Errorf("other subject: %d", c)
	}
	// A second later one token is back.
	h.clock.Advance(time.Second)
	if c := h.do(h.authed("GET", "/limited", "orders:read")).StatusCode; c != 200 {
		t.Errorf("after refill: %d", c)
	}
}

// TestAudit: one JSON line per decision, never the token or the proof.
func TestAudit(t *testing.T) {
	h := newHarness(t)
	r := h.authed("GET", "/v1/orders", "orders:read")
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "DPoP ")
	proof := r.Header.Get("DPoP")
	h.do(r)
	h.do(h.authed("GET", "/admin/x", "orders:read"))
	lines := strings.Split(strings.TrimSpace(h.logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d audit lines, want 2:\n%s", len(lines), h.logs.String())
	}
	var allow, deny map[string]any
	json.Unmarshal([]byte(lines[0]), &allow)
	json.Unmarshal([]byte(lines[1]), &deny)
	if allow["decision"] != "allow" || allow["client"] != appID || allow["sub"] != "alice" || allow["route"] != "orders-read" || allow["status"] != float64(200) {
		t.Errorf("allow line: %s", lines[0])
	}
	if deny["decision"] != "deny" || deny["rule"] != "scope" || deny["status"] != float64(403) {
		t.Errorf("deny line: %s", lines[1])
	}
	if strings.Contains(h.logs.String(), tok) || strings.Contains(h.logs.String(), proof) {
		t.Error("audit log holds the token or the proof")
	}
	// Metrics and health on the admin handler.
	admin := newServer(t, h.proxy.AdminHandler())
	for path, want := range map[string]string{
		"/metrics": `keyless_proxy_requests_total{decision="deny",rule="scope"} 1`,
		"/healthz": "ok", "/readyz": "ready",
	} {
		res := h.do(mustReq(t, "GET", admin.URL+path))
		b, _ := readAll(res)
		if res.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d, body lacks %q", path, res.StatusCode, want)
		}
	}
}

func mustReq(t *testing.T, method, url string) *http.Request {
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
