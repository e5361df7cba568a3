package suggest

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"scopes", "upstream", "path", "methods", "serve", "proxy", "revoke"}
	tests := []struct {
		got, want string
		ok        bool
	}{
		{"scope", "scopes", true},
		{"Scopes", "scopes", true},
		{"upstrem", "upstream", true},
		{"pth", "path", true},
		{"sevre", "serve", true},
		{"prxoy", "proxy", true},
		{"colour", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := Closest(tt.got, known)
		if ok != tt.ok || ok && got != tt.want {
			t.Errorf("Closest(%q) = %q, %v; want %q, %v", tt.got, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := Closest("x", nil); ok {
		t.Error("a suggestion from no names")
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"scope", "scopes", 1}} {
		if d := Distance(tt.a, tt.b); d != tt.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, d, tt.d)
		}
	}
}
