package edge

import (
	"context"
	"strings"
	"testing"
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
