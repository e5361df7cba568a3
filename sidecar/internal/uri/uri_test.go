package uri

import (
	"net/url"
	"testing"
)

// TestClasses checks the classes against the standard library: a byte is
// unreserved exactly when url.PathEscape leaves it alone and it is not a
// sub-delim or ':' '@' (which PathEscape keeps too), and every hex digit
// round-trips.
func TestClasses(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		kept := url.PathEscape(string(rune(b))) == string(rune(b)) && b < 0x80
		subDelimOrPchar := b == '!' || b == '$' || b == '&' || b == '\'' || b == '(' || b == ')' ||
			b == '*' || b == '+' || b == ',' || b == ';' || b == '=' || b == ':' || b == '@'
		if got, want := IsUnreserved(b), kept && !subDelimOrPchar; got != want {
			t.Errorf("IsUnreserved(%q) = %v, want %v", b, got, want)
		}
	}
	for v := 0; v < 16; v++ {
		for _, d := range []byte{HexDigits[v], "0123456789abcdef"[v]} {
			if !IsHex(d) || Unhex(d) != byte(v) {
				t.Errorf("hex digit %q: IsHex %v, Unhex %d", d, IsHex(d), Unhex(d))
			}
		}
	}
	for _, b := range []byte{'g', 'G', '/', ' ', 0xff} {
		if IsHex(b) {
			t.Errorf("IsHex(%q) = true", b)
		}
	}
}
