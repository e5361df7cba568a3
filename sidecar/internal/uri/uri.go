// Package uri holds the RFC 3986 character classes and percent-encoding
// primitives that both path normalizers use: the DPoP core's htu
// comparison and the proxy's canonical request path. Keeping them in one
// place keeps the two from drifting apart on what "the same path" means.
package uri

// HexDigits are the uppercase hex digits of a normalized percent-encoding
// (RFC 3986 section 6.2.2.1).
const HexDigits = "0123456789ABCDEF"

// IsUnreserved reports an unreserved character (RFC 3986 section 2.3):
// percent-encodings of these decode to the same URI.
func IsUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// IsHex reports a hex digit of either case.
func IsHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Unhex is the value of a hex digit; c must satisfy IsHex.
func Unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
