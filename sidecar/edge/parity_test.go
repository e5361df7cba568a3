package edge

import (
	"context"
	"strings"
	"testing"

	"github.com/keyless-dev/keyless/sidecar/proxy/check"
)

// The checks the process proxy runs with the path, before anything else
// looks at a request (sidecar/proxy serve): the host (421, RFC 9110
// section 15.5.20) from the request URL's authority, since the Worker's
// request.url is what the platform routed on, and the query
// (check.Query: 400). Then, on authenticated routes, an access_token in
// the query is refused (RFC 6750 section 2.3, docs/security.md) before a
// preview or a forward.
func TestServeHostAndQuery(t *testing.T) {
	w := newWorldWith(t, "hosts: [\"edge.example.test:8443\"]\n", nil)
	many := strings.Repeat("a=1&", 10000) + "a=1"
	for _, tc := range []struct {
		name   string
		url    string // after the scheme
		status int
		rule   string // the audit rule; "" when forwarded
	}{
		{"public host", "api.example.test/v1/orders", 200, ""},
		{"public host, default port", "api.example.test:443/v1/orders", 200, ""},
		{"public host, upper case", "API.Example.TEST/v1/orders", 200, ""},
		{"an alias", "edge.example.test:8443/v1/orders", 200, ""},
		{"another host", "evil.example/v1/orders", 421, "host"},
		{"the alias's name on another port", "edge.example.test/v1/orders", 421, "host"},
		{"public host on another port", "api.example.test:8443/v1/orders", 421, "host"},
		{"a workers.dev name", "keyless-edge.acct.workers.dev/v1/orders", 421, "host"},
		{"userinfo", "mallory@api.example.test/v1/orders", 421, "host"},
		{"another host, anonymous route", "evil.example/public/x", 421, "host"},
		{"another host, revocation push", "evil.example" + RevocationPath, 421, "host"},
		{"query with a ; separator", "api.example.test/v1/orders?a=1;b=2", 400, "query"},
		{"query with a bad escape", "api.example.test/v1/orders?a=%zz", 400, "query"},
		{"query with a truncated escape", "api.example.test/v1/orders?a=%4", 400, "query"},
		{"query with too many fields", "api.example.test/v1/orders?" + many, 400, "query"},
		{"bad query, anonymous route", "api.example.test/public/x?a=%zz", 400, "query"},
		{"bad query before the host", "evil.example/v1/orders?a=1;b", 400, "query"},
		{"access_token in the query", "api.example.test/v1/orders?access_token=x", 400, "token.param"},
		{"access_token, encoded name", "api.example.test/v1/orders?a=1&access%5Ftoken=x", 400, "token.param"},
		{"access_token on a preview route", "api.example.test/preview?access_token=x", 400, "token.param"},
		{"a field that only contains the name", "api.example.test/v1/orders?my_access_token=x", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := w.request(t, "GET", "/x", "orders:read")
			// The proof is for the public URL whatever host the request
			// names (htu is built from public_url alone).
			path := tc.url[strings.IndexByte(tc.url, '/'):]
			if p, _, _ := strings.Cut(path, "?"); p != "/x" {
				r = w.withToken(t, "GET", path, strings.TrimPrefix(r.Header["authorization"][0], "DPoP "))
			}
			r.URL = "https://" + tc.url
			f, res := w.h.Serve(context.Background(), r)
			status, rule := 200, ""
			if res != nil {
				status = res.Status
				rule = res.Audit.Rule
				if f != nil {
					t.Fatal("both a forward and an answer")
				}
			} else if f == nil {
				t.Fatal("neither a forward nor an answer")
			}
			if status != tc.status || rule != tc.rule {
				t.Fatalf("= %d (rule %q), want %d (rule %q); body %s", status, rule, tc.status, tc.rule, bodyText(res))
			}
			if status == 400 && !strings.Contains(header(res.Header, "WWW-Authenticate")[0], `error="invalid_request"`) {
				t.Errorf("WWW-Authenticate = %q", header(res.Header, "WWW-Authenticate"))
			}
		})
	}
}

func bodyText(res *Response) string {
	if res == nil {
		return ""
	}
	return string(res.Body)
}

// The per-key quota of live replay entries (dpop.replay_per_key, else
// derived from the routes' rate limits as natively: check.KeyQuota) is
// handed to the replay object with every use; a key past it is refused
// alone, 429 with Retry-After, rule replay.per_key, and not forwarded.
func TestServeKeyQuota(t *testing.T) {
	w := newWorldWith(t, "dpop:\n  replay_per_key: 2\n", nil)
	ctx := context.Background()
	for i := range 2 {
		if _, res := w.h.Serve(ctx, w.request(t, "GET", "/v1/orders", "orders:read")); res != nil {
			t.Fatalf("proof %d refused: %d %s", i, res.Status, res.Body)
		}
	}
	f, res := w.h.Serve(ctx, w.request(t, "GET", "/v1/orders", "orders:read"))
	if f != nil || res == nil || res.Status != 429 || res.Audit.Rule != "replay.per_key" ||
		len(header(res.Header, "Retry-After")) != 1 || !strings.Contains(string(res.Body), "rate_limited") {
		t.Fatalf("third live proof of one key = %+v, %+v", f, res)
	}
	if w.host.quotaMax != 2 {
		t.Errorf("quota handed to the replay store = %d, want 2", w.host.quotaMax)
	}
	// Derived when not set: the same number the process proxy uses.
	d := newWorld(t, nil)
	d.h.Serve(ctx, d.request(t, "GET", "/v1/orders", "orders:read"))
	if want := check.KeyQuota(d.h.cfg.Proxy); d.host.quotaMax != want || want <= 0 {
		t.Errorf("derived quota = %d, want %d", d.host.quotaMax, want)
	}
}
