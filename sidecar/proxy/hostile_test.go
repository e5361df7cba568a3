package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/nonce"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// Hostile-input regressions: each test here failed on the proxy before the
// fix it names, over real HTTP (HTTP/2 over TLS where the bug was in h2).

// bodyLen is how the client frames a request body.
type bodyLen int

const (
	knownLength   bodyLen = iota // Content-Length
	unknownLength                // chunked on HTTP/1.1, no content-length on h2
)

func withBody(r *http.Request, ct, body string, framing bodyLen) *http.Request {
	r.Header.Set("Content-Type", ct)
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
	if framing == unknownLength {
		r.ContentLength = -1
	}
	return r
}

// TestBodyRulesEveryFraming: max_body_bytes and content_types apply to
// every body, whatever its framing: Content-Length, chunked HTTP/1.1, and
// an HTTP/2 DATA stream without content-length (ContentLength -1 and no
// Transfer-Encoding on the server side), on authenticated and anonymous
// routes alike.
func TestBodyRulesEveryFraming(t *testing.T) {
	big := strings.Repeat("x", 5000)
	rows := []struct {
		name   string
		req    func(h *harness) *http.Request
		status int
	}{
		{"text/plain to a JSON-only route", func(h *harness) *http.Request {
			return h.authed("POST", "/v1/orders", "orders:write")
		}, 415},
		{"5000 bytes to a 1 KiB route", func(h *harness) *http.Request {
			return h.authed("POST", "/v1/orders", "orders:write")
		}, 413},
		{"anonymous route over its cap", func(h *harness) *http.Request {
			return h.request("POST", "/public/small")
		}, 413},
		{"anonymous route, type not allowed", func(h *harness) *http.Request {
			return h.request("POST", "/public/small")
		}, 415},
	}
	ct := map[int]string{415: "text/plain", 413: "application/json"}
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		for _, framing := range []bodyLen{knownLength, unknownLength} {
			opts := []harnessOption{smallPublicRoute}
			if proto == "HTTP/2.0" {
				opts = append(opts, withH2)
			}
			h := newHarness(t, opts...)
			for _, row := range rows {
				name := proto + "/" + map[bodyLen]string{knownLength: "length", unknownLength: "stream"}[framing] + "/" + row.name
				t.Run(name, func(t *testing.T) {
					h.t = t
					r := withBody(row.req(h), ct[row.status], big, framing)
					if row.status == 415 {
						withBody(r, ct[row.status], "hi", framing)
					}
					before := h.echo.hits.Load()
					res := h.do(r)
					if res.Proto != proto {
						t.Fatalf("served over %s, want %s", res.Proto, proto)
					}
					checkRefusal(t, res, row.status, noCheck)
					if got := h.echo.hits.Load(); got != before {
						t.Errorf("forwarded: backend hits %d -> %d", before, got)
					}
				})
			}
			// A body within the rules is forwarded whole.
			t.Run(proto+"/ok", func(t *testing.T) {
				h.t = t
				res := h.do(withBody(h.authed("POST", "/v1/orders", "orders:write"), "application/json", `{"a":1}`, framing))
				if res.StatusCode != 200 || h.echo.last(t).Body != `{"a":1}` {
					t.Fatalf("status %d, backend body %q", res.StatusCode, h.echo.last(t).Body)
				}
			})
		}
	}
}

// smallPublicRoute adds an anonymous JSON-only route with a 1 KiB cap.
func smallPublicRoute(h *harness) {
	h.cfg.Routes = append([]Route{{Name: "public-small", Methods: []string{"POST"}, Path: "/public/small", Upstream: "echo",
		Anonymous: true, MaxBodyBytes: 1024, ContentTypes: []string{"application/json"}}}, h.cfg.Routes...)
}

// TestHTTP10Chunked: HTTP/1.0 has no chunked coding (RFC 9112 section
// 6.1: a server must not assume a 1.0 client can frame chunks), and Go's
// server drops the header on 1.0 requests, so the body would be forwarded
// empty and the chunks left on the connection. Such a request, and any
// HTTP/1.0 request with a body method but no Content-Length (RFC 1945
// section 8.3), is refused.
func TestHTTP10Chunked(t *testing.T) {
	h := newHarness(t)
	rows := map[string]string{
		"anonymous": "POST /public/x HTTP/1.0\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"authenticated": func() string {
			tok := h.lease(nil, "orders:write")
			return "POST /v1/orders HTTP/1.0\r\nHost: api.example.test\r\nAuthorization: DPoP " + tok + "\r\nDPoP: " + h.proof("POST", "/v1/orders", tok) +
				"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
		}(),
	}
	for name, req := range rows {
		t.Run(name, func(t *testing.T) {
			h.t = t
			before := h.echo.hits.Load()
			res := h.raw(req)
			checkRefusal(t, res, 400, noCheck)
			if got := h.echo.hits.Load(); got != before {
				t.Errorf("forwarded: backend hits %d -> %d", before, got)
			}
		})
	}
	// HTTP/1.0 with Content-Length still works.
	res := h.raw("POST /public/x HTTP/1.0\r\nHost: api.example.test\r\nContent-Length: 3\r\n\r\nabc")
	if res.StatusCode != 200 || h.echo.last(t).Body != "abc" {
		t.Fatalf("HTTP/1.0 with Content-Length: %d", res.StatusCode)
	}
}

// secretDoc is a document whose "ssn" a route redacts.
const secretDoc = `{"name":"Ann","ssn":"078-05-1120","card":"4111111111111111"}`

// rangeRoutes adds two redacted routes: one to an upstream that honours
// Range (http.ServeContent), one to an upstream that answers 206 whatever
// it is asked.
func rangeRoutes(ranged *seenRange) harnessOption {
	return func(h *harness) {
		up := newServer(h.t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ranged.set(r.Header.Get("Range"), r.Header.Get("If-Range"))
			w.Header().Set("Content-Type", "application/json")
			if r.URL.Path == "/partial" {
				w.Header().Set("Content-Range", "bytes 9-30/"+strconv.Itoa(len(secretDoc)))
				w.WriteHeader(http.StatusPartialContent)
				io.WriteString(w, secretDoc[9:31])
				return
			}
			http.ServeContent(w, r, "doc.json", time.Unix(0, 0), strings.NewReader(secretDoc))
		}))
		h.cfg.Upstreams["ranged"] = Upstream{URL: up.URL}
		h.cfg.Routes = append([]Route{
			{Name: "doc", Path: "/doc", Upstream: "ranged", Scopes: []string{"users:read"}, Redact: []string{"ssn", "card"}},
			{Name: "partial", Path: "/partial", Upstream: "ranged", Scopes: []string{"users:read"}, Redact: []string{"ssn"}},
			{Name: "doc-plain", Path: "/doc-plain", Upstream: "ranged", Scopes: []string{"users:read"}},
		}, h.cfg.Routes...)
	}
}

type seenRange struct{ rng, ifRange string }

func (s *seenRange) set(r, ir string) { s.rng, s.ifRange = r, ir }

// TestRangeOnRedactedRoutes: a byte range of a redacted document would
// return the removed fields slice by slice. On routes with redact, Range
// and If-Range never reach the upstream and a 206 is refused (502).
func TestRangeOnRedactedRoutes(t *testing.T) {
	var seen seenRange
	h := newHarness(t, rangeRoutes(&seen))
	r := h.authed("GET", "/doc", "users:read")
	r.Header.Set("Range", "bytes=9-30")
	r.Header.Set("If-Range", `"x"`)
	res := h.do(r)
	body, _ := readAll(res)
	if res.StatusCode != 200 || strings.Contains(string(body), "078-05") || strings.Contains(string(body), "4111") {
		t.Errorf("ranged GET of a redacted route: %d %s", res.StatusCode, body)
	}
	if seen.rng != "" || seen.ifRange != "" {
		t.Errorf("upstream saw Range %q, If-Range %q", seen.rng, seen.ifRange)
	}
	res = h.do(h.authed("GET", "/partial", "users:read"))
	body, _ = readAll(res)
	if res.StatusCode != 502 || strings.Contains(string(body), "078-05") {
		t.Errorf("206 from upstream on a redacted route: %d %s", res.StatusCode, body)
	}
	// Routes without redaction keep Range.
	r = h.authed("GET", "/doc-plain", "users:read")
	r.Header.Set("Range", "bytes=0-3")
	if res := h.do(r); res.StatusCode != 206 || seen.rng != "bytes=0-3" {
		t.Errorf("Range on an unredacted route: %d, upstream saw %q", res.StatusCode, seen.rng)
	}
}

// TestSubjectLimitBeforeApp: requests a subject's own limit refuses never
// spend the app's bucket, so one user cannot drain the app's limit for
// everyone; every 429 carries Retry-After.
func TestSubjectLimitBeforeApp(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.cfg.Routes = append([]Route{{Name: "shared", Path: "/shared", Upstream: "echo", Scopes: read,
			RateLimit: &RateLimit{PerApp: ratelimit.Limit{Rate: 0.001, Burst: 3}, PerSubject: ratelimit.Limit{Rate: 0.001, Burst: 1}}}}, h.cfg.Routes...)
	})
	as := func(sub string) *http.Request {
		tok := h.lease(func(s *token.Spec) { s.Subject = sub }, read...)
		return h.withToken("GET", "/shared", tok)
	}
	if res := h.do(as("alice")); res.StatusCode != 200 {
		t.Fatalf("alice first: %d", res.StatusCode)
	}
	for i := 0; i < 5; i++ {
		res := h.do(as("alice"))
		if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
			t.Fatalf("alice %d: %d, Retry-After %q", i, res.StatusCode, res.Header.Get("Retry-After"))
		}
	}
	for _, sub := range []string{"bob", "carol"} {
		if res := h.do(as(sub)); res.StatusCode != 200 {
			t.Errorf("%s after alice was limited: %d (the app bucket was spent by refused requests)", sub, res.StatusCode)
		}
	}
	// The app limit itself still holds, with Retry-After.
	res := h.do(as("dave"))
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
		t.Errorf("fourth subject past the app burst: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
}

// TestAnonymousRoutesGetNoCredential: the upstream credential is a
// per-route decision, off on anonymous routes unless the route turns it on,
// and a client's copy of the header is stripped either way.
func TestAnonymousRoutesGetNoCredential(t *testing.T) {
	t.Setenv("KEYLESS_TEST_API_KEY", "s3cret-upstream-key")
	on := true
	h := newHarness(t, func(h *harness) {
		h.cfg.Upstreams["cred"] = Upstream{URL: h.echo.srv.URL, Credential: &Credential{Header: "X-Api-Key", ValueEnv: "KEYLESS_TEST_API_KEY"}}
		h.cfg.Routes = append([]Route{
			{Name: "anon-cred", Methods: []string{"GET"}, Path: "/anon/**", Upstream: "cred", Anonymous: true},
			{Name: "anon-cred-on", Methods: []string{"GET"}, Path: "/anon-on/**", Upstream: "cred", Anonymous: true, SendCredential: &on},
			{Name: "authed-cred", Path: "/authed-cred", Upstream: "cred", Scopes: read},
		}, h.cfg.Routes...)
	})
	rows := []struct {
		name string
		req  *http.Request
		want string
	}{
		{"anonymous", h.request("GET", "/anon/x"), ""},
		{"anonymous with send_credential", h.request("GET", "/anon-on/x"), "s3cret-upstream-key"},
		{"authenticated", h.authed("GET", "/authed-cred", read...), "s3cret-upstream-key"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			row.req.Header.Set("X-Api-Key", "client-chosen")
			if res := h.do(row.req); res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := h.echo.last(t).Header.Get("X-Api-Key"); got != row.want {
				t.Errorf("upstream saw X-Api-Key %q, want %q", got, row.want)
			}
		})
	}
}

// TestEarlyHintsKeepFinalHeaders: a 1xx from the upstream is relayed, but
// the proxy's CORS and DPoP-Nonce headers are on the final response, and
// the audit line records the final status.
func TestEarlyHintsKeepFinalHeaders(t *testing.T) {
	h := newHarness(t, nonceOn(nonce.RandomKey()), func(h *harness) {
		up := newServer(h.t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
		}))
		h.cfg.Upstreams["hints"] = Upstream{URL: up.URL}
		h.cfg.Routes = append([]Route{{Name: "hints", Path: "/hints", Upstream: "hints", Scopes: read}}, h.cfg.Routes...)
	})
	// Get a nonce first.
	first := h.do(h.authed("GET", "/hints", read...))
	n := first.Header.Get("DPoP-Nonce")
	if first.StatusCode != 401 || n == "" {
		t.Fatalf("first: %d nonce %q", first.StatusCode, n)
	}
	tok := h.lease(nil, read...)
	r := h.request("GET", "/hints")
	r.Header.Set("Authorization", "DPoP "+tok)
	r.Header.Set("DPoP", h.proofWith(h.signer, "GET", publicURL+"/hints", dpop.ProofOptions{AccessToken: tok, Nonce: n}))
	r.Header.Set("Origin", appOrigin)
	res := h.do(r)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != appOrigin {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, appOrigin)
	}
	if got := res.Header.Values("DPoP-Nonce"); len(got) != 1 || got[0] == "" {
		t.Errorf("DPoP-Nonce = %q, want exactly one", got)
	}
	lines := strings.Split(strings.TrimSpace(h.logs.String()), "\n")
	var last struct {
		Status int    `json:"status"`
		Route  string `json:"route"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Route != "hints" || last.Status != 200 {
		t.Errorf("audit line %s: status %d, want 200", lines[len(lines)-1], last.Status)
	}
}

// TestVirtualHost: a request naming a host other than the public URL's (or
// a configured alias), in Host, :authority or an absolute-form target, is
// refused with 421 and never forwarded.
func TestVirtualHost(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		t.Run(proto, func(t *testing.T) {
			var opts []harnessOption
			if proto == "HTTP/2" {
				opts = append(opts, withH2)
			}
			h := newHarness(t, append(opts, func(h *harness) { h.cfg.Hosts = append(h.cfg.Hosts, "alias.example.test") })...)
			for _, row := range []struct {
				host   string
				anon   bool
				status int
			}{
				{"evil.example", false, 421},
				{"evil.example", true, 421},
				{"api.example.test.evil.example", false, 421},
				{"api.example.test:8443", false, 421},
				{"api.example.test", false, 200},
				{"API.Example.Test", false, 200},
				{"api.example.test:443", false, 200},
				{"alias.example.test", true, 200},
			} {
				t.Run(row.host, func(t *testing.T) {
					h.t = t
					r := h.authed("GET", "/v1/orders", read...)
					if row.anon {
						r = h.request("GET", "/public/x")
					}
					r.Host = row.host
					before := h.echo.hits.Load()
					res := h.do(r)
					if res.StatusCode != row.status {
						b, _ := readAll(res)
						t.Fatalf("status %d, want %d (%s)", res.StatusCode, row.status, b)
					}
					if row.status == 421 && h.echo.hits.Load() != before {
						t.Error("forwarded to the upstream")
					}
				})
			}
		})
	}
	h := newHarness(t)
	tok := h.lease(nil, read...)
	res := h.raw("GET http://evil.example/v1/orders HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: DPoP " + tok +
		"\r\nDPoP: " + h.proof("GET", "/v1/orders", tok) + "\r\nConnection: close\r\n\r\n")
	if res.StatusCode != 421 || h.echo.hits.Load() != 0 {
		t.Errorf("absolute-form target naming another host: %d, hits %d", res.StatusCode, h.echo.hits.Load())
	}
}

// TestUnparseableQueryRefused: a query the proxy cannot parse the way the
// upstream might (";" separators, bad escapes, more than MaxQueryParams
// parameters) is refused (400), never forwarded without its query; a
// parseable one is forwarded byte for byte.
func TestUnparseableQueryRefused(t *testing.T) {
	h := newHarness(t)
	for name, q := range map[string]string{
		"semicolon":       "a=1;admin=true",
		"bad escape":      "a=%zz",
		"10001 params":    strings.Repeat("a&", 10001),
		"semicolon alone": ";",
	} {
		t.Run(name, func(t *testing.T) {
			h.t = t
			before := h.echo.hits.Load()
			for _, r := range []*http.Request{h.authed("GET", "/v1/orders?"+q, read...), h.request("GET", "/public/x?"+q)} {
				checkRefusal(t, h.do(r), 400, noCheck)
			}
			if got := h.echo.hits.Load(); got != before {
				t.Errorf("forwarded: hits %d -> %d", before, got)
			}
		})
	}
	res := h.do(h.authed("GET", "/v1/orders?b=2&a=1&a=%41&c", read...))
	if res.StatusCode != 200 || h.echo.last(t).RequestURI != "/v1/orders?b=2&a=1&a=%41&c" {
		t.Errorf("valid query: %d, upstream got %q", res.StatusCode, h.echo.last(t).RequestURI)
	}
}

// TestAccessTokenParamsRefused: RFC 6750 sections 2.2 and 2.3 are not
// accepted here: a request with access_token in the query or a form body is
// refused with invalid_request even when its DPoP credentials are valid,
// so the token is never passed on to the upstream.
func TestAccessTokenParamsRefused(t *testing.T) {
	h := newHarness(t)
	rows := map[string]func() *http.Request{
		"query": func() *http.Request { return h.authed("GET", "/v1/orders?x=1&access_token=abc", read...) },
		"form body": func() *http.Request {
			return withBody(h.authed("POST", "/admin/x", "admin"), "application/x-www-form-urlencoded", "a=1&access_token=abc", knownLength)
		},
		"form body, streamed": func() *http.Request {
			return withBody(h.authed("POST", "/admin/x", "admin"), "application/x-www-form-urlencoded; charset=utf-8", "access_token=abc", unknownLength)
		},
	}
	for name, req := range rows {
		t.Run(name, func(t *testing.T) {
			h.t = t
			before := h.echo.hits.Load()
			res := h.do(req())
			checkRefusal(t, res, 400, "invalid_request")
			if !strings.Contains(res.Header.Get("WWW-Authenticate"), "Authorization header") {
				t.Errorf("WWW-Authenticate = %q, want a description naming the Authorization header", res.Header.Get("WWW-Authenticate"))
			}
			if got := h.echo.hits.Load(); got != before {
				t.Errorf("forwarded: hits %d -> %d", before, got)
			}
		})
	}
	// A form without the parameter is forwarded whole.
	res := h.do(withBody(h.authed("POST", "/admin/x", "admin"), "application/x-www-form-urlencoded", "a=1&b=2", unknownLength))
	if res.StatusCode != 200 || h.echo.last(t).Body != "a=1&b=2" {
		t.Errorf("form without access_token: %d, upstream body %q", res.StatusCode, h.echo.last(t).Body)
	}
}

// TestNonceModeIatRecovers: in nonce mode a proof whose iat is outside the
// window is answered use_dpop_nonce with a fresh nonce, so a client with a
// skewed clock recovers in one retry (RFC 9449 section 8: the nonce is
// then the freshness signal); a 200 carrying a new nonce is not cacheable.
func TestNonceModeIatRecovers(t *testing.T) {
	h := newHarness(t, nonceOn(nonce.RandomKey()))
	n := h.do(h.authed("GET", "/v1/orders", read...)).Header.Get("DPoP-Nonce")
	send := func(iat time.Time, n string) *http.Response {
		tok := h.lease(nil, read...)
		r := h.request("GET", "/v1/orders")
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", h.proofWith(h.signer, "GET", publicURL+"/v1/orders", dpop.ProofOptions{AccessToken: tok, Nonce: n, Now: iat}))
		return h.do(r)
	}
	for name, iat := range map[string]time.Time{"old": h.clock.Now().Add(-10 * time.Minute), "future": h.clock.Now().Add(10 * time.Minute)} {
		t.Run(name, func(t *testing.T) {
			res := send(iat, n)
			checkRefusal(t, res, 401, "use_dpop_nonce")
			fresh := res.Header.Get("DPoP-Nonce")
			if fresh == "" {
				t.Fatal("no DPoP-Nonce")
			}
			if res := send(h.clock.Now(), fresh); res.StatusCode != 200 {
				t.Errorf("retry with the fresh nonce: %d", res.StatusCode)
			}
		})
	}
	// Two rotations later... one rotation: the old nonce is accepted, and
	// the 200 carries the new one with Cache-Control: no-store.
	h.clock.Advance(time.Minute)
	res := send(h.clock.Now(), n)
	if res.StatusCode != 200 || res.Header.Get("DPoP-Nonce") == n {
		t.Fatalf("after rotation: %d, nonce %q", res.StatusCode, res.Header.Get("DPoP-Nonce"))
	}
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("200 with a new DPoP-Nonce: Cache-Control %q, want no-store", cc)
	}
}
