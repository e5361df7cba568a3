package proxy

import (
	"strings"
	"testing"
)

func TestCanonicalPath(t *testing.T) {
	tests := []struct {
		raw, want string
		bad       bool
	}{
		{raw: "/", want: "/"},
		{raw: "/v1/orders", want: "/v1/orders"},
		{raw: "/v1/orders/", want: "/v1/orders/"},
		{raw: "/V1/Orders", want: "/V1/Orders"},
		{raw: "/%61dmin/users", want: "/admin/users"},
		{raw: "/a%7Eb", want: "/a~b"},
		{raw: "/a%7eb", want: "/a~b"},
		{raw: "/caf%c3%a9", want: "/caf%C3%A9"},
		{raw: "/caf\xc3\xa9", want: "/caf%C3%A9"},
		{raw: "/a%20b", want: "/a%20b"},
		{raw: "/a'(@:,)", want: "/a'(@:,)"},
		{raw: "/a\"<>", want: "/a%22%3C%3E"},
		{raw: "/...", want: "/..."},
		{raw: "/.well-known/x", want: "/.well-known/x"},
		{raw: "", bad: true},
		{raw: "v1", bad: true},
		{raw: "//admin/users", bad: true},
		{raw: "/v1//orders", bad: true},
		{raw: "/v1/../admin", bad: true},
		{raw: "/v1/./orders", bad: true},
		{raw: "/v1/..", bad: true},
		{raw: "/v1/.", bad: true},
		{raw: "/v1/%2e%2e/admin", bad: true},
		{raw: "/v1/%2E%2E/admin", bad: true},
		{raw: "/v1/.%2e/admin", bad: true},
		{raw: "/v1/%2e/admin", bad: true},
		{raw: "/api%2Fadmin", bad: true},
		{raw: "/api%2fadmin", bad: true},
		{raw: "/api%5Cadmin", bad: true},
		{raw: "/api\\admin", bad: true},
		{raw: "/admin;x", bad: true},
		{raw: "/public;/../admin", bad: true},
		{raw: "/admin%3Bx", bad: true},
		{raw: "/admin%00", bad: true},
		{raw: "/admin%0a", bad: true},
		{raw: "/admin%252e", bad: true},
		{raw: "/admin%3F", bad: true},
		{raw: "/admin%23", bad: true},
		{raw: "/admin\x00", bad: true},
		{raw: "/admin x", bad: true},
		{raw: "/admin\t", bad: true},
		{raw: "/admin%", bad: true},
		{raw: "/admin%4", bad: true},
		{raw: "/admin%zz", bad: true},
		{raw: "/" + strings.Repeat("a", MaxPathLen), bad: true},
	}
	for _, tt := range tests {
		got, err := CanonicalPath(tt.raw)
		if tt.bad {
			if err == nil {
				t.Errorf("CanonicalPath(%q) = %q, want error", tt.raw, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CanonicalPath(%q) = %q, %v, want %q", tt.raw, got, err, tt.want)
		}
	}
}

func TestRawPath(t *testing.T) {
	tests := []struct{ uri, want string }{
		{"/v1/orders?x=/admin", "/v1/orders"},
		{"/v1/orders", "/v1/orders"},
		{"http://evil.example/admin?x", "/admin"},
		{"http://evil.example", "/"},
		{"http://evil.example?x", "/"},
	}
	for _, tt := range tests {
		if got, ok := rawPath(tt.uri); !ok || got != tt.want {
			t.Errorf("rawPath(%q) = %q, %v, want %q", tt.uri, got, ok, tt.want)
		}
	}
	for _, bad := range []string{"", "*", "evil.example:443"} {
		if got, ok := rawPath(bad); ok {
			t.Errorf("rawPath(%q) = %q, want refusal", bad, got)
		}
	}
}

// FuzzCanonicalPath: no panics; the result is a fixed point; it contains no
// ambiguous form; decoding it and re-encoding gives the same segments.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/", "/v1/orders", "/%61dmin", "//x", "/a/../b", "/%2e%2e", "/a;b", "/caf\xc3\xa9", "/a%2F", "/a%7e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := CanonicalPath(raw)
		if err != nil {
			return
		}
		again, err := CanonicalPath(c)
		if err != nil || again != c {
			t.Fatalf("CanonicalPath(%q) = %q, not a fixed point: %q, %v", raw, c, again, err)
		}
		if strings.Contains(c, "//") || strings.ContainsAny(c, "\\;?#\x00") {
			t.Fatalf("CanonicalPath(%q) = %q holds an ambiguous form", raw, c)
		}
		dec := unescapePath(c)
		for _, seg := range strings.Split(dec, "/")[1:] {
			if seg == "." || seg == ".." {
				t.Fatalf("CanonicalPath(%q) = %q decodes to a dot segment", raw, c)
			}
		}
		if strings.Count(dec, "/") != strings.Count(c, "/") {
			t.Fatalf("CanonicalPath(%q) = %q decodes to more segments", raw, c)
		}
	})
}

func TestDropQueryParam(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"keyless_ticket=abc", ""},
		{"a=1&keyless_ticket=abc&b=2", "a=1&b=2"},
		{"a=1&keyless_ticketx=2", "a=1&keyless_ticketx=2"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := dropQueryParam(tt.raw, "keyless_ticket"); got != tt.want {
			t.Errorf("dropQueryParam(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}
