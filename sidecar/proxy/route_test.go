package proxy

import (
	"testing"
)

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		noMatch []string
	}{
		{"/v1/orders", []string{"/v1/orders"}, []string{"/v1/orders/", "/v1/orders/1", "/V1/orders", "/v1/order", "/v1/ordersx", "/v1"}},
		{"/admin/**", []string{"/admin", "/admin/", "/admin/users", "/admin/a/b/c"}, []string{"/admin.json", "/administrator", "/Admin/users", "/ADMIN/users", "/"}},
		{"/public/**", []string{"/public/x"}, []string{"/publicity", "/public-admin", "/publicx/y"}},
		{"/v1/orders/*", []string{"/v1/orders/1"}, []string{"/v1/orders", "/v1/orders/", "/v1/orders/1/2"}},
		{"/v1/*/items", []string{"/v1/a/items"}, []string{"/v1//items", "/v1/a/b/items"}},
		{"/**", []string{"/", "/x", "/x/y/"}, nil},
		{"/", []string{"/"}, []string{"/x"}},
		{"/v1/orders/", []string{"/v1/orders/"}, []string{"/v1/orders"}},
	}
	for _, tt := range tests {
		pt, err := compilePattern(tt.pattern)
		if err != nil {
			t.Fatalf("compilePattern(%q): %v", tt.pattern, err)
		}
		for _, p := range tt.match {
			if !pt.match(p) {
				t.Errorf("%q does not match %q", tt.pattern, p)
			}
		}
		for _, p := range tt.noMatch {
			if pt.match(p) {
				t.Errorf("%q matches %q", tt.pattern, p)
			}
		}
	}
}

func TestCompilePatternRefuses(t *testing.T) {
	for _, p := range []string{"", "admin", "/a/**/b", "/a*", "/a//b", "/a/../b", "/%2e", "/a;b", "/a/**/"} {
		if _, err := compilePattern(p); err == nil {
			t.Errorf("compilePattern(%q) accepted", p)
		}
	}
}

func TestRouterLookup(t *testing.T) {
	rt := router{}
	for _, r := range []Route{
		{Name: "read", Methods: []string{"GET"}, Path: "/v1/orders"},
		{Name: "write", Methods: []string{"POST"}, Path: "/v1/orders"},
		{Name: "admin", Methods: []string{"*"}, Path: "/admin/**"},
	} {
		pt, _ := compilePattern(r.Path)
		rt.routes = append(rt.routes, &route{Route: r, pattern: pt})
	}
	tests := []struct {
		method, path, want string
		pathOnly           bool
	}{
		{"GET", "/v1/orders", "read", false},
		{"HEAD", "/v1/orders", "read", false},
		{"POST", "/v1/orders", "write", false},
		{"DELETE", "/v1/orders", "", true},
		{"DELETE", "/admin/x", "admin", false},
		{"GET", "/nope", "", false},
	}
	for _, tt := range tests {
		r, po := rt.lookup(tt.method, tt.path)
		got := ""
		if r != nil {
			got = r.Name
		}
		if got != tt.want || po != tt.pathOnly {
			t.Errorf("lookup(%s %s) = %q, %v, want %q, %v", tt.method, tt.path, got, po, tt.want, tt.pathOnly)
		}
	}
}

func FuzzPatternMatch(f *testing.F) {
	f.Add("/admin/**", "/admin/x")
	f.Add("/v1/*/x", "/v1/a/x")
	f.Fuzz(func(t *testing.T, pat, path string) {
		pt, err := compilePattern(pat)
		if err != nil {
			return
		}
		c, err := CanonicalPath(path)
		if err != nil {
			return
		}
		_ = pt.match(c)
	})
}
