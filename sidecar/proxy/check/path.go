package check

import (
	"errors"
	"github.com/keyless-dev/keyless/sidecar/internal/uri"
	"strings"
)

// MaxPathLen bounds the request path.
const MaxPathLen = 4096

// Path errors; the messages are fixed and header-safe.
var (
	errPathEmpty     = errors.New("path must start with /")
	errPathLong      = errors.New("path too long")
	errPathControl   = errors.New("path contains a control character or space")
	errPathBackslash = errors.New("path contains a backslash")
	errPathParam     = errors.New("path contains a ; parameter")
	errPathEncoding  = errors.New("path contains an invalid percent-encoding")
	errPathEncoded   = errors.New("path contains an encoded dot, slash, backslash, percent, NUL or delimiter")
	errPathDot       = errors.New("path contains a dot segment")
	errPathDelimiter = errors.New("path contains a literal ? or #")
	errPathEmptySeg  = errors.New("path contains an empty segment (//)")
)

// CanonicalPath checks a raw request path (the request-target up to "?", as
// the client sent it) and returns its canonical escaped form, the one form
// that route matching sees and the upstream receives
// (docs/security.md#a10), or an error for every ambiguous form:
//
//   - "//", "." and ".." segments, literal or encoded, are refused: a
//     backend that resolves them would reach another route;
//   - "\", ";" (path parameters) and control characters are refused;
//   - percent-encoded "/", "\", ".", "%", ";", "?", "#", NUL and other
//     controls are refused (a backend decoding them once more would see a
//     different path);
//   - percent-encoded unreserved characters are decoded ("/%61dmin" is
//     "/admin", RFC 3986 section 6.2.2.2), other encodings uppercased, and
//     other bytes outside the path grammar (non-ASCII, '"', '<', ...)
//     percent-encoded.
//
// Path case and a trailing slash are significant and kept.
//
// https://www.rfc-editor.org/rfc/rfc3986#section-6.2.2
func CanonicalPath(raw string) (string, error) {
	if raw == "" || raw[0] != '/' {
		return "", errPathEmpty
	}
	if len(raw) > MaxPathLen {
		return "", errPathLong
	}
	clean := true // raw is already canonical: the common case allocates nothing
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c <= 0x20 || c == 0x7f:
			return "", errPathControl
		case c == '\\':
			return "", errPathBackslash
		case c == ';':
			return "", errPathParam
		case c == '#' || c == '?':
			return "", errPathDelimiter
		case c == '%':
			if i+2 >= len(raw) || !uri.IsHex(raw[i+1]) || !uri.IsHex(raw[i+2]) {
				return "", errPathEncoding
			}
			d := uri.Unhex(raw[i+1])<<4 | uri.Unhex(raw[i+2])
			if refusedEncoded(d) {
				return "", errPathEncoded
			}
			if uri.IsUnreserved(d) || !isUpperHex(raw[i+1]) || !isUpperHex(raw[i+2]) {
				clean = false
			}
			i += 2
		case !pathChar(c):
			clean = false
		}
	}
	p := raw
	if !clean {
		b := make([]byte, 0, len(raw)+8)
		for i := 0; i < len(raw); i++ {
			c := raw[i]
			switch {
			case c == '%':
				d := uri.Unhex(raw[i+1])<<4 | uri.Unhex(raw[i+2])
				if uri.IsUnreserved(d) {
					b = append(b, d)
				} else {
					b = append(b, '%', uri.HexDigits[d>>4], uri.HexDigits[d&15])
				}
				i += 2
			case pathChar(c):
				b = append(b, c)
			default:
				b = append(b, '%', uri.HexDigits[c>>4], uri.HexDigits[c&15])
			}
		}
		p = string(b)
		// Escaping can triple the length: the bound holds for the form
		// that is matched and forwarded, so a canonical path is always
		// itself acceptable.
		if len(p) > MaxPathLen {
			return "", errPathLong
		}
	}
	// Segments: no empty segment except a trailing one, no dot segments.
	for i := 1; i <= len(p); {
		j := strings.IndexByte(p[i:], '/')
		if j < 0 {
			j = len(p) - i
		}
		seg := p[i : i+j]
		last := i+j == len(p)
		switch {
		case seg == "" && !last:
			return "", errPathEmptySeg
		case seg == "." || seg == "..":
			return "", errPathDot
		}
		i += j + 1
	}
	return p, nil
}

// refusedEncoded reports whether a percent-encoded octet is refused.
func refusedEncoded(d byte) bool {
	return d < 0x20 || d == 0x7f || d == '/' || d == '\\' || d == '.' || d == '%' ||
		d == ';' || d == '?' || d == '#'
}

// UnescapePath decodes a canonical path. CanonicalPath refused every
// encoding whose decoding could change the path's structure, so this is
// exact.
func UnescapePath(p string) string {
	if strings.IndexByte(p, '%') < 0 {
		return p
	}
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			b = append(b, uri.Unhex(p[i+1])<<4|uri.Unhex(p[i+2]))
			i += 2
			continue
		}
		b = append(b, p[i])
	}
	return string(b)
}

// RawPath returns the path part of a request-target exactly as sent: an
// origin-form target up to "?", or the path of an absolute-form target
// (whose scheme and authority are ignored, docs/security.md#a3). HTTP/2
// requests carry the :path pseudo-header in RequestURI too.
func RawPath(requestURI string) (string, bool) {
	if requestURI == "" || requestURI == "*" {
		return "", false
	}
	if requestURI[0] != '/' {
		i := strings.Index(requestURI, "://")
		if i <= 0 {
			return "", false
		}
		rest := requestURI[i+3:]
		j := strings.IndexAny(rest, "/?#")
		if j < 0 || rest[j] != '/' {
			return "/", true
		}
		requestURI = rest[j:]
	}
	if i := strings.IndexAny(requestURI, "?#"); i >= 0 {
		requestURI = requestURI[:i]
	}
	return requestURI, true
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

// pathChar reports whether c may appear literally in a canonical path
// (RFC 3986 section 3.3 pchar and "/", without ";" which is refused).
func pathChar(c byte) bool {
	return uri.IsUnreserved(c) || strings.IndexByte("!$&'()*+,=:@/", c) >= 0
}
