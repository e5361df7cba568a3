package proof

import (
	"net/url"
	"strings"
	"testing"
)

func TestNormalizeHTU(t *testing.T) {
	tests := []struct {
		in, want string // want "" = error
	}{
		{"https://api.example.test/v1/orders", "https://api.example.test/v1/orders"},
		{"HTTPS://API.Example.TEST/v1/orders", "https://api.example.test/v1/orders"},
		{"https://api.example.test:443/v1/orders", "https://api.example.test/v1/orders"},
		{"https://api.example.test:0443/v1/orders", "https://api.example.test/v1/orders"},
		{"http://api.example.test:80/x", "http://api.example.test/x"},
		{"http://api.example.test:443/x", "http://api.example.test:443/x"},
		{"https://api.example.test:/x", "https://api.example.test/x"},
		{"http://127.0.0.1:8788/x", "http://127.0.0.1:8788/x"},
		{"http://[::1]:8788/x", "http://[::1]:8788/x"},
		{"http://[::1]/x", "http://[::1]/x"},
		{"https://api.example.test", "https://api.example.test/"},
		{"https://api.example.test?x=1", "https://api.example.test/"},
		{"https://api.example.test/v1/orders?x=1#f", "https://api.example.test/v1/orders"},
		{"https://api.example.test/v1/orders#f?x", "https://api.example.test/v1/orders"},
		{"https://api.example.test/%7euser", "https://api.example.test/~user"},
		{"https://api.example.test/%7Euser", "https://api.example.test/~user"},
		{"https://api.example.test/a%2fb", "https://api.example.test/a%2Fb"},
		{"https://api.example.test/a%2Fb", "https://api.example.test/a%2Fb"},
		{"https://api.example.test/%61dmin", "https://api.example.test/admin"},
		{"https://api.example.test/caf%c3%a9", "https://api.example.test/caf%C3%A9"},
		{"https://api.example.test/café", "https://api.example.test/caf%C3%A9"},
		{"https://api.example.test/it's(1)@x:y,z", "https://api.example.test/it's(1)@x:y,z"},
		{"https://api.example.test/a/./b/../c", "https://api.example.test/a/c"},
		{"https://api.example.test/a/..", "https://api.example.test/"},
		{"https://api.example.test/a/%2e%2e/b", "https://api.example.test/b"},
		{"https://api.example.test/V1/Orders/", "https://api.example.test/V1/Orders/"},
		{"https://api.example.test//x", "https://api.example.test//x"},
		{"", ""},
		{"/v1/orders", ""},
		{"https://", ""},
		{"https:///x", ""},
		{"ftp://api.example.test/x", ""},
		{"javascript://x", ""},
		{"https://u@api.example.test/x", ""},
		{"https://u:p@api.example.test/x", ""},
		{"https://api.example.test/a b", ""},
		{"https://api.example.test/a\x00", ""},
		{"https://api.example.test/a\tb", ""},
		{"https://api.example.test:x/a", ""},
		{"https://api.example.test/%zz", ""},
		{"https://api.example.test/%4", ""},
		{"https://[::1/x", ""},
		{"https://api\\evil.test/x", ""},
		{"https://api.example.test/" + strings.Repeat("a", maxHTULen), ""},
	}
	for _, tt := range tests {
		got, err := NormalizeHTU(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("NormalizeHTU(%q) = %q, want error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeHTU(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// I-11: a browser builds htu from URL origin + pathname, the proxy from the
// raw request-target; both normalize to the same string. Go's url package
// stands in for the browser's escaping here; the Chromium test checks the
// real one.
func TestNormalizeHTUParity(t *testing.T) {
	for _, p := range []string{"~", "%7E", "'", "(", "@", ":", ",", " ", "é", "[x]", "a|b", "^"} {
		u := &url.URL{Scheme: "https", Host: "api.example.test", Path: "/v1/" + p}
		escaped := u.String()
		a, err1 := NormalizeHTU(escaped)
		b, err2 := NormalizeHTU(escaped)
		if err1 != nil || err2 != nil || a != b {
			t.Errorf("%q: %q %v / %q %v", p, a, err1, b, err2)
		}
		// Normalization is idempotent.
		if c, err := NormalizeHTU(a); err != nil || c != a {
			t.Errorf("%q: not idempotent: %q -> %q (%v)", p, a, c, err)
		}
	}
}

func FuzzNormalizeHTU(f *testing.F) {
	for _, s := range []string{"https://api.example.test/v1/orders?x#y", "HTTP://A:80/%7e/./../x", "http://[::1]:0/", "https://u@h/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeHTU(s)
		if err != nil {
			return
		}
		// Idempotent, and the result is an absolute URI Go can parse back
		// to the same scheme and host.
		m, err := NormalizeHTU(n)
		if err != nil || m != n {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", s, n, m, err)
		}
		u, err := url.Parse(n)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("%q -> %q parses as %+v (%v)", s, n, u, err)
		}
	})
}
