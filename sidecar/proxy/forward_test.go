package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// identityOnly is the set of headers the backend may see on a plain GET
// through the proxy: the transport's own, the proxy's forwarding headers
// and the injected identity.
var identityOnly = map[string]bool{
	"Accept-Encoding": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	"X-Keyless-Sub": true, "X-Keyless-Client": true, "X-Keyless-Scope": true, "X-Keyless-Lease": true,
}

func TestForwardSeesOnlyInjectedIdentity(t *testing.T) {
	h := newHarness(t)
	r := h.authed("GET", "/v1/orders?limit=5&x=/admin", "orders:read", "extra")
	spoof := map[string]string{
		"X-Keyless-Sub": "mallory", "X_Keyless_Sub": "mallory", "x-keyless-SUB": "mallory", "X-Keyless-Admin": "1",
		"X-Forwarded-For": "6.6.6.6", "X-Real-IP": "10.0.0.1", "Forwarded": "for=127.0.0.1", "X_Forwarded_For": "6.6.6.6",
		"X-Forwarded-Prefix": "/admin", "X-Forwarded-Uri": "/admin", "X-Original-URL": "/admin/users", "X-Rewrite-URL": "/admin",
		"X-Envoy-Original-Path": "/admin", "X-HTTP-Method-Override": "DELETE", "X-HTTP-Method": "DELETE", "X-Method-Override": "DELETE",
		"Cookie": "session=secret", "User-Agent": "curl/8", "Referer": "https://app.example.test/private",
		"Proxy-Authorization": "Basic eA==", "True-Client-IP": "1.2.3.4",
	}
	for k, v := range spoof {
		r.Header[k] = []string{v} // raw keys, so underscores and case survive
	}
	// docs/security.md#a1: the client names the identity header in
	// Connection, hoping hop-by-hop removal deletes the injected one.
	r.Header.Set("Connection", "keep-alive, X-Keyless-Sub, X-Keyless-Scope, X-Keyless-Lease")
	res := h.do(r)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	got := h.echo.last(t)
	for k := range got.Header {
		if !identityOnly[k] {
			t.Errorf("backend saw header %s: %q", k, got.Header[k])
		}
	}
	want := map[string]string{
		"X-Keyless-Sub": "alice", "X-Keyless-Client": appID, "X-Keyless-Scope": "orders:read extra",
		"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "api.example.test", "X-Forwarded-Proto": "https",
	}
	for k, v := range want {
		if vs := got.Header.Values(k); len(vs) != 1 || vs[0] != v {
			t.Errorf("backend %s = %q, want exactly %q", k, vs, v)
		}
	}
	if !strings.HasPrefix(got.Header.Get("X-Keyless-Lease"), "lease-") {
		t.Errorf("X-Keyless-Lease = %q", got.Header.Get("X-Keyless-Lease"))
	}
	if got.RequestURI != "/v1/orders?limit=5&x=/admin" || got.Method != "GET" {
		t.Errorf("backend got %s %s", got.Method, got.RequestURI)
	}
	if got.Host != strings.TrimPrefix(h.echo.srv.URL, "http://") {
		t.Errorf("backend Host = %q, want the upstream's", got.Host)
	}
	// Response: upstream internals stripped, the proxy's CORS/nonce only.
	for _, k := range []string{"Server", "X-Powered-By", "Access-Control-Allow-Origin", "X-Keyless-Sub"} {
		if v := res.Header.Get(k); v != "" {
			t.Errorf("client saw upstream header %s: %q", k, v)
		}
	}
}

func TestForwardPaths(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name, method, target, htuPath string
		scopes                        []string
		wantURI                       string
	}{
		{"prefix stripped, htu keeps it", "GET", "/api/v1/orders?q=1", "/api/v1/orders", []string{"orders:read"}, "/v1/orders?q=1"},
		{"prefix route root", "GET", "/api/v1", "/api/v1", []string{"orders:read"}, "/v1"},
		{"encoded unreserved decoded once, forwarded canonical", "GET", "/%61dmin/users", "/admin/users", []string{"admin"}, "/admin/users"},
		{"non-ASCII forwarded percent-encoded", "GET", "/admin/caf%C3%A9", "/admin/caf%C3%A9", []string{"admin"}, "/admin/caf%C3%A9"},
		{"htu with query is accepted (decision 1)", "GET", "/v1/orders?a=b", "/v1/orders?a=b", []string{"orders:read"}, "/v1/orders?a=b"},
		{"trailing slash kept", "GET", "/admin/", "/admin/", []string{"admin"}, "/admin/"},
		{"HEAD allowed by GET route", "HEAD", "/v1/orders", "/v1/orders", []string{"orders:read"}, "/v1/orders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			res := h.raw(h.rawAuthed(tt.method, tt.target, tt.htuPath, tt.scopes...))
			if res.StatusCode != 200 {
				b, _ := readAll(res)
				t.Fatalf("status %d %s %s", res.StatusCode, res.Header.Get("WWW-Authenticate"), b)
			}
			if got := h.echo.last(t); got.RequestURI != tt.wantURI || got.Method != tt.method {
				t.Errorf("backend got %s %s, want %s %s", got.Method, got.RequestURI, tt.method, tt.wantURI)
			}
		})
	}
}

func TestPublicRouteForwardedWithoutIdentity(t *testing.T) {
	h := newHarness(t)
	r := h.request("GET", "/public/x")
	r.Header.Set("X-Keyless-Sub", "mallory")
	r.Header.Set("X-Original-URL", "/admin/users")
	r.Header.Set("X-Forwarded-Prefix", "/admin")
	r.Header.Set("Authorization", "DPoP whatever")
	res := h.do(r)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	got := h.echo.last(t)
	for k := range got.Header {
		if strings.HasPrefix(k, "X-Keyless") || k == "X-Original-Url" || k == "X-Forwarded-Prefix" || k == "Authorization" {
			t.Errorf("backend saw %s on a public route", k)
		}
	}
	if got.RequestURI != "/public/x" {
		t.Errorf("backend path %q", got.RequestURI)
	}
}

func TestTrailersDropped(t *testing.T) {
	h := newHarness(t)
	res := h.raw("POST /public/x HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\nTrailer: X-Keyless-Sub\r\nConnection: close\r\n\r\n" +
		"3\r\nabc\r\n0\r\nX-Keyless-Sub: mallory\r\n\r\n")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	got := h.echo.last(t)
	if len(got.Trailer) != 0 || got.Header.Get("X-Keyless-Sub") != "" || got.Header.Get("Trailer") != "" {
		t.Errorf("backend saw trailers %v / header %q / Trailer %q", got.Trailer, got.Header.Get("X-Keyless-Sub"), got.Header.Get("Trailer"))
	}
	if got.Body != "abc" {
		t.Errorf("body %q", got.Body)
	}
	if !res.Close {
		t.Error("chunked request: connection not closed after the response")
	}
}

func TestContentLengthAndChunked(t *testing.T) {
	h := newHarness(t)
	// RFC 9112 section 6.3: CL + TE chunked. The body is read as chunked
	// and the connection is closed; "GET /admin" smuggled in the CL-framed
	// reading is never seen as a second request.
	res := h.raw("POST /public/x HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\nGET /admin/users HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
	if res.StatusCode != 200 || !res.Close {
		t.Fatalf("status %d close %v", res.StatusCode, res.Close)
	}
	got := h.echo.last(t)
	if got.Header.Get("Content-Length") != "" && got.Header.Get("Content-Length") != "0" {
		t.Errorf("backend Content-Length %q", got.Header.Get("Content-Length"))
	}
	if n := h.echo.hits.Load(); n != 1 {
		t.Errorf("backend hits = %d, want 1", n)
	}
}

func TestUpgradeH2CNeverForwarded(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/v1/orders", "/ws"} {
		r := h.authed("GET", path, "orders:read")
		r.Header.Set("Connection", "Upgrade, HTTP2-Settings")
		r.Header.Set("Upgrade", "h2c")
		r.Header.Set("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")
		res := h.do(r)
		if res.StatusCode == http.StatusSwitchingProtocols {
			t.Fatalf("%s: switched protocols", path)
		}
		got := h.echo.last(t)
		if got.Header.Get("Upgrade") != "" || got.Header.Get("Http2-Settings") != "" {
			t.Errorf("%s: backend saw Upgrade %q, HTTP2-Settings %q", path, got.Header.Get("Upgrade"), got.Header.Get("Http2-Settings"))
		}
	}
}

func TestResponseRedaction(t *testing.T) {
	h := newHarness(t)
	res := h.do(h.authed("GET", "/v1/users/1", "users:read"))
	body, _ := readAll(res)
	if res.StatusCode != 200 {
		t.Fatalf("status %d %s", res.StatusCode, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["email"]; ok || strings.Contains(string(body), "1 Main") || m["name"] != "Ann" {
		t.Errorf("redacted body = %s", body)
	}
	// A response that must be redacted but is not JSON is refused.
	res = h.do(h.authed("GET", "/v1/html", "users:read"))
	body, _ = readAll(res)
	if res.StatusCode != 502 || strings.Contains(string(body), "ann@") {
		t.Errorf("non-JSON redacted route: status %d body %s", res.StatusCode, body)
	}
}

func TestUpstreamDownAndSlow(t *testing.T) {
	h := newHarness(t)
	res := h.do(h.authed("GET", "/down", "orders:read"))
	b, _ := readAll(res)
	if res.StatusCode != 502 || !strings.Contains(string(b), "bad_gateway") {
		t.Errorf("down: %d %s", res.StatusCode, b)
	}
	start := time.Now()
	res = h.do(h.authed("GET", "/slow", "orders:read"))
	b, _ = readAll(res)
	if res.StatusCode != 504 || !strings.Contains(string(b), "gateway_timeout") {
		t.Errorf("slow: %d %s", res.StatusCode, b)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("slow upstream took %v", d)
	}
}

func TestPreviewNeverForwarded(t *testing.T) {
	h := newHarness(t)
	tok := h.lease(func(s *token.Spec) { s.Preview = true }, "orders:read")
	res := h.do(h.withToken("GET", "/preview", tok))
	b, _ := readAll(res)
	if res.StatusCode != 200 || string(b) != `{"orders":[{"id":"example"}]}` {
		t.Errorf("preview: %d %s", res.StatusCode, b)
	}
	tok = h.lease(func(s *token.Spec) { s.Preview = true }, "orders:read")
	res = h.do(h.withToken("GET", "/v1/orders", tok))
	if res.StatusCode != 501 {
		t.Errorf("preview without example: %d", res.StatusCode)
	}
	if n := h.echo.hits.Load(); n != 0 {
		t.Errorf("backend hits = %d, want 0", n)
	}
}

func TestCookiesPerRoute(t *testing.T) {
	h := newHarness(t)
	r := h.authed("GET", "/cookies", "orders:read")
	r.Header.Set("Cookie", "a=b")
	if res := h.do(r); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := h.echo.last(t).Header.Get("Cookie"); got != "a=b" {
		t.Errorf("Cookie on an allow_cookies route = %q", got)
	}
}

func TestAuthorizationSchemeRobustness(t *testing.T) {
	h := newHarness(t)
	// docs/security.md#i-12: scheme case-insensitive, several spaces.
	for _, scheme := range []string{"DPoP ", "dpop ", "DPOP   "} {
		tok := h.lease(nil, "orders:read")
		r := h.request("GET", "/v1/orders")
		r.Header.Set("Authorization", scheme+tok)
		r.Header.Set("DPoP", h.proof("GET", "/v1/orders", tok))
		if res := h.do(r); res.StatusCode != 200 {
			t.Errorf("%q: status %d", scheme, res.StatusCode)
		}
	}
	// Ed25519 under both names (docs/security.md#d8) with a lease bound to it.
	for _, legacy := range []bool{false, true} {
		s := dpop.NewEd25519Signer(edKey(), legacy)
		tok := h.lease(func(sp *token.Spec) { sp.JKT = s.PublicJWK().Thumbprint() }, "orders:read")
		r := h.request("GET", "/v1/orders")
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", h.proofWith(s, "GET", publicURL+"/v1/orders", dpop.ProofOptions{AccessToken: tok}))
		if res := h.do(r); res.StatusCode != 200 {
			t.Errorf("Ed25519 legacy=%v: status %d %s", legacy, res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
	}
}

func TestReplay(t *testing.T) {
	t.Run("50 concurrent copies over two replicas", func(t *testing.T) {
		h := newHarness(t)
		// Replica 2 shares the replay store and revocations (docs/security.md#a6).
		p2, err := New(h.cfg, h.opts)
		if err != nil {
			t.Fatal(err)
		}
		srv2 := newServer(t, p2)
		r := h.authed("GET", "/v1/orders", "orders:read")
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				c := r.Clone(context.Background())
				if i%2 == 1 {
					c.URL.Host = strings.TrimPrefix(srv2.URL, "http://")
				}
				res, err := h.srv.Client().Do(c)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				mu.Lock()
				codes[res.StatusCode]++
				mu.Unlock()
			}(i)
		}
		wg.Wait()
		if codes[200] != 1 || codes[401] != 49 {
			t.Errorf("status counts = %v, want one 200 and 49 401", codes)
		}
	})
	t.Run("future-dated proof replayed after MAX_AGE (mistake 7)", func(t *testing.T) {
		h := newHarness(t)
		tok := h.lease(nil, "orders:read")
		p := h.proofWith(h.signer, "GET", publicURL+"/v1/orders", dpop.ProofOptions{AccessToken: tok, Now: h.clock.Now().Add(5 * time.Second)})
		send := func() int {
			r := h.request("GET", "/v1/orders")
			r.Header.Set("Authorization", "DPoP "+tok)
			r.Header.Set("DPoP", p)
			return h.do(r).StatusCode
		}
		if c := send(); c != 200 {
			t.Fatalf("first: %d", c)
		}
		h.clock.Advance(61 * time.Second)
		if c := send(); c != 401 {
			t.Errorf("replay at t0+MAX_AGE+1s: %d, want 401", c)
		}
	})
	t.Run("pre-burning a jti with a bad proof does not block the good one", func(t *testing.T) {
		h := newHarness(t)
		tok := h.lease(nil, "orders:read")
		hdr, cl := h.proofParts("GET", "/v1/orders", tok)
		cl["htu"] = "https://evil.example/v1/orders"
		bad := h.request("GET", "/v1/orders")
		bad.Header.Set("Authorization", "DPoP "+tok)
		bad.Header.Set("DPoP", signJWS(h.key, hdr, cl))
		if c := h.do(bad).StatusCode; c != 401 {
			t.Fatalf("bad proof: %d", c)
		}
		cl["htu"] = publicURL + "/v1/orders"
		good := h.request("GET", "/v1/orders")
		good.Header.Set("Authorization", "DPoP "+tok)
		good.Header.Set("DPoP", signJWS(h.key, hdr, cl))
		if c := h.do(good).StatusCode; c != 200 {
			t.Errorf("good proof with the pre-burned jti: %d, want 200", c)
		}
	})
	t.Run("same jti from two keys", func(t *testing.T) {
		h := newHarness(t)
		for i := 0; i < 2; i++ {
			k, s := newECKey()
			tok := h.lease(func(sp *token.Spec) { sp.JKT = s.PublicJWK().Thumbprint() }, "orders:read")
			hdr, cl := h.proofParts("GET", "/v1/orders", tok)
			j := s.PublicJWK()
			hdr["jwk"] = map[string]any{"kty": "EC", "crv": "P-256", "x": j.X, "y": j.Y}
			cl["jti"] = "1"
			r := h.request("GET", "/v1/orders")
			r.Header.Set("Authorization", "DPoP "+tok)
			r.Header.Set("DPoP", signJWS(k, hdr, cl))
			if c := h.do(r).StatusCode; c != 200 {
				t.Errorf("key %d: %d, want 200", i, c)
			}
		}
	})
}

// failing stores answer errors: the proxy must answer 503, never pass.
type failingReplay struct{ err error }

func (f failingReplay) Use(context.Context, string, string, time.Time) error { return f.err }

type failingRevocations struct{}

func (failingRevocations) Revoke(context.Context, store.Revocation, time.Time) error {
	return errors.New("down")
}
func (failingRevocations) AnyRevoked(context.Context, ...store.Revocation) (bool, error) {
	return false, errors.New("down")
}

func TestStoresFailClosed(t *testing.T) {
	for name, opt := range map[string]harnessOption{
		"replay unreachable":      func(h *harness) { h.opts.Replay = failingReplay{errors.New("down")} },
		"replay full":             func(h *harness) { h.opts.Replay = failingReplay{store.ErrFull} },
		"revocations unreachable": func(h *harness) { h.opts.Revocations = failingRevocations{} },
		"JWKS unreachable": func(h *harness) {
			h.opts.Tokens = &token.JWTVerifier{Keys: &token.RemoteJWKS{URL: "http://127.0.0.1:1/jwks"}, Issuer: issuer, Audience: publicURL, Now: h.clock.Now}
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, opt)
			res := h.do(h.authed("GET", "/v1/orders", "orders:read"))
			if res.StatusCode != 503 || h.echo.hits.Load() != 0 {
				t.Errorf("status %d, hits %d, want 503 NF", res.StatusCode, h.echo.hits.Load())
			}
		})
	}
}

func TestReplayCacheFloodNeverEvicts(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.replay.Max = 20 })
	captured := h.authed("GET", "/v1/orders", "orders:read")
	if c := h.do(captured.Clone(context.Background())).StatusCode; c != 200 {
		t.Fatalf("captured proof first use: %d", c)
	}
	full := 0
	for i := 0; i < 40; i++ {
		k, s := newECKey()
		_ = k
		tok := h.lease(func(sp *token.Spec) { sp.JKT = s.PublicJWK().Thumbprint() }, "orders:read")
		r := h.request("GET", "/v1/orders")
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", h.proofWith(s, "GET", publicURL+"/v1/orders", dpop.ProofOptions{AccessToken: tok}))
		if h.do(r).StatusCode == 503 {
			full++
		}
	}
	if full == 0 {
		t.Error("the bounded replay cache never refused")
	}
	hits := h.echo.hits.Load()
	if c := h.do(captured).StatusCode; c != 401 && c != 503 {
		t.Errorf("captured proof replayed after the flood: %d, want 401 or 503", c)
	}
	if h.echo.hits.Load() != hits {
		t.Error("replayed proof forwarded")
	}
}

func TestJKUNeverFetched(t *testing.T) {
	h := newHarness(t)
	trap := &counter{}
	ts := newServer(t, trap)
	tok := h.lease(nil, "orders:read")
	hdr, cl := h.proofParts("GET", "/v1/orders", tok)
	hdr["jku"], hdr["x5u"], hdr["kid"] = ts.URL, ts.URL, "k"
	r := h.request("GET", "/v1/orders")
	r.Header.Set("Authorization", "DPoP "+tok)
	r.Header.Set("DPoP", signJWS(h.key, hdr, cl))
	if c := h.do(r).StatusCode; c != 200 {
		t.Errorf("status %d (jku and kid are ignored; the jwk verifies)", c)
	}
	if n := trap.n.Load(); n != 0 {
		t.Errorf("trap listener got %d requests", n)
	}
}

func TestUnknownKidRefreshIsRateLimited(t *testing.T) {
	h := newHarness(t)
	if c := h.do(h.authed("GET", "/v1/orders", "orders:read")).StatusCode; c != 200 {
		t.Fatal(c)
	}
	before := h.remote.Fetches()
	for i := 0; i < 20; i++ {
		tok := forgeToken(h, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "random-" + randomString()}, func(string) []byte { return make([]byte, 64) })
		if c := h.do(h.withToken("GET", "/v1/orders", tok)).StatusCode; c != 401 {
			t.Fatalf("unknown kid: %d", c)
		}
	}
	if n := h.remote.Fetches() - before; n > 1 {
		t.Errorf("20 unknown kids caused %d JWKS fetches, want at most 1", n)
	}
	// A rotated key is picked up after the refresh interval.
	if err := h.keys.Rotate(h.clock.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(31 * time.Second)
	if c := h.do(h.authed("GET", "/v1/orders", "orders:read")).StatusCode; c != 200 {
		t.Errorf("lease from a rotated key: %d", c)
	}
}

// A lease minted from an external issuer's token carries the issuer's
// name (claim idp): the upstream gets it in X-Keyless-Issuer, beside the
// subject claim's value in X-Keyless-Sub; a client's copy of the header
// never reaches it, and a revocation of the local subject of that name
// does not touch the external one (docs/identity-providers.md).
func TestForwardIssuerHeader(t *testing.T) {
	h := newHarness(t)
	ext := func(s *token.Spec) { s.IdP = "corp" }
	r := h.request("GET", "/v1/orders")
	tok := h.lease(ext, "orders:read")
	r.Header.Set("Authorization", "DPoP "+tok)
	r.Header.Set("DPoP", h.proof("GET", "/v1/orders", tok))
	r.Header["X-Keyless-Issuer"] = []string{"partner"}
	r.Header["X_Keyless_Issuer"] = []string{"partner"}
	if res := h.do(r); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	got := h.echo.last(t)
	if vs := got.Header.Values("X-Keyless-Issuer"); len(vs) != 1 || vs[0] != "corp" || got.Header.Get("X-Keyless-Sub") != "alice" {
		t.Errorf("backend X-Keyless-Issuer = %q, X-Keyless-Sub = %q; want corp, alice", vs, got.Header.Get("X-Keyless-Sub"))
	}
	if _, ok := got.Header["X_keyless_issuer"]; ok {
		t.Error("client's X_Keyless_Issuer forwarded")
	}

	// A local lease: no issuer header, and the client's copy is stripped.
	r = h.authed("GET", "/v1/orders", "orders:read")
	r.Header["X-Keyless-Issuer"] = []string{"corp"}
	if res := h.do(r); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if v := h.echo.last(t).Header.Values("X-Keyless-Issuer"); len(v) != 0 {
		t.Errorf("local lease: backend X-Keyless-Issuer = %q", v)
	}

	// Revoking the local alice leaves corp's alice alone, and the other
	// way round.
	if err := h.revoked.Revoke(context.Background(), store.Revocation{Kind: store.KindSub, Value: "alice"}, store.WatermarkUntil(h.clock.Now())); err != nil {
		t.Fatal(err)
	}
	if res := h.do(h.authed("GET", "/v1/orders", "orders:read")); res.StatusCode != 401 {
		t.Errorf("revoked local alice: status %d", res.StatusCode)
	}
	r = h.request("GET", "/v1/orders")
	tok = h.lease(ext, "orders:read")
	r.Header.Set("Authorization", "DPoP "+tok)
	r.Header.Set("DPoP", h.proof("GET", "/v1/orders", tok))
	if res := h.do(r); res.StatusCode != 200 {
		t.Errorf("corp alice after the local alice's revocation: status %d", res.StatusCode)
	}
}
