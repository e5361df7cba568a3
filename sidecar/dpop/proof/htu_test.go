package proof

import (
	"fmt"
	"net/netip"
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

// docs/security.md#i-11: a browser builds htu from URL origin + pathname (WHATWG path
// percent-encoding), while another client may escape like Go's url
// package. Where RFC 3986 says the two spellings are the same URI
// (unreserved characters, non-ASCII, characters outside pchar), they
// normalize equal. Reserved characters such as "'" or "(" are not
// equivalent to their percent-encodings; for those the proxy compares the
// raw request-target the client sent (the Chromium test checks that path).
func TestNormalizeHTUParity(t *testing.T) {
	differ := 0
	for _, p := range []string{" ", "é", "[x]", "a|b", "^", "a b~é[|]"} {
		goForm := (&url.URL{Scheme: "https", Host: "api.example.test", Path: "/v1/" + p}).String()
		browser := "https://api.example.test" + whatwgPath("/v1/"+p)
		if goForm != browser {
			differ++
		}
		a, err1 := NormalizeHTU(goForm)
		b, err2 := NormalizeHTU(browser)
		if err1 != nil || err2 != nil || a != b {
			t.Errorf("%q: Go %q -> %q (%v); browser %q -> %q (%v)", p, goForm, a, err1, browser, b, err2)
		}
		if c, err := NormalizeHTU(a); err != nil || c != a {
			t.Errorf("%q: not idempotent: %q -> %q (%v)", p, a, c, err)
		}
	}
	if differ < 3 {
		t.Errorf("only %d rows are spelled differently by the two encoders; the test proves little", differ)
	}
}

// whatwgPath percent-encodes a path as a browser's URL parser does: the
// path percent-encode set (C0 controls, space, '"', '#', '<', '>', '?',
// '`', '{', '}') and every non-ASCII byte; everything else stays literal.
func whatwgPath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("\"#<>?`{}", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
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

func TestValidIPv6(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"::1", true}, {"::", true}, {"1::", true}, {"2001:db8::8:800:200c:417a", true}, {"1:2:3:4:5:6:7:8", true},
		{"1:2:3:4:5:6:7::", true}, {"::ffff:192.0.2.1", true}, {"1:2:3:4:5:6:1.2.3.4", true}, {"ABCD::ef", true},
		{"", false}, {":", false}, {":1::", false}, {"1:", false}, {"1::2::3", false}, {"1:2:3:4:5:6:7:8:9", false},
		{"1:2:3:4:5:6:7", false}, {"12345::", false}, {"g::", false}, {"::1.2.3", false}, {"::1.2.3.04", false},
		{"::256.1.1.1", false}, {"1.2.3.4", false}, {"1:2:3:4:5:6:7:1.2.3.4", false}, {"::1%eth0", false}, {"::1.2.3.4:5", false},
	} {
		if got := validIPv6(tt.in); got != tt.want {
			t.Errorf("validIPv6(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzValidIPv6 holds validIPv6 to net/netip.
func FuzzValidIPv6(f *testing.F) {
	for _, s := range []string{"::1", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "1::2::3", "fe80::1%lo", "1.2.3.4", "::01.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := netip.ParseAddr(s)
		want := err == nil && a.Is6() && a.Zone() == ""
		if got := validIPv6(s); got != want {
			t.Fatalf("validIPv6(%q) = %v, netip says %v", s, got, want)
		}
	})
}
