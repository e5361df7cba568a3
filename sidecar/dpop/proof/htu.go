package proof

import (
	"errors"
	"github.com/keyless-dev/keyless/sidecar/internal/uri"
	"strings"
)

var errHTU = errors.New("htu is not an absolute http(s) URI")

// NormalizeHTU returns the form of an http(s) URI that DPoP compares: RFC 9449
// section 4.3 check 9 compares htu "ignoring any query and fragment parts",
// after the syntax-based normalization of RFC 3986 section 6.2.2.
//
//   - scheme and host lowercased (6.2.2.1), the scheme's default port and an
//     empty port removed (6.2.3), an empty path becomes "/";
//   - percent-encodings uppercased, and those of unreserved characters
//     decoded (6.2.2.1, 6.2.2.2); other bytes outside the path grammar,
//     such as non-ASCII letters, percent-encoded, as a browser's URL does;
//   - dot segments removed (6.2.2.3);
//   - query and fragment dropped (docs/security.md#d1).
//
// Path case and trailing slashes are significant and kept. A URI with
// userinfo, a control character or space, or a scheme other than http and
// https is refused.
func NormalizeHTU(s string) (string, error) {
	if s == "" || len(s) > maxHTULen {
		return "", errHTU
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c == 0x7f {
			return "", errHTU
		}
	}
	i := strings.Index(s, "://")
	if i <= 0 {
		return "", errHTU
	}
	scheme := strings.ToLower(s[:i])
	if scheme != "http" && scheme != "https" {
		return "", errHTU
	}
	rest := s[i+3:]
	if j := strings.IndexAny(rest, "?#"); j >= 0 {
		rest = rest[:j]
	}
	authority, path := rest, ""
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		authority, path = rest[:j], rest[j:]
	}
	if strings.ContainsAny(authority, "@\\") {
		return "", errHTU
	}
	host, port := authority, ""
	if strings.HasPrefix(authority, "[") {
		j := strings.IndexByte(authority, ']')
		if j < 0 {
			return "", errHTU
		}
		host, port = authority[:j+1], authority[j+1:]
		if port != "" && port[0] != ':' {
			return "", errHTU
		}
	} else if j := strings.LastIndexByte(authority, ':'); j >= 0 {
		host, port = authority[:j], authority[j:]
	}
	if host == "" || !validHost(host) {
		return "", errHTU
	}
	port = strings.TrimPrefix(port, ":")
	for k := 0; k < len(port); k++ {
		if port[k] < '0' || port[k] > '9' {
			return "", errHTU
		}
	}
	port = strings.TrimLeft(port, "0")
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	p, err := normalizePath(path)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(scheme) + 3 + len(host) + len(port) + 1 + len(p))
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(strings.ToLower(host))
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	b.WriteString(p)
	// Escaping can triple the length: the bound holds for the result too,
	// so a normalized htu is itself a valid input (normalization is
	// idempotent).
	if b.Len() > maxHTULen {
		return "", errHTU
	}
	return b.String(), nil
}

// maxHTULen bounds the htu claim and request URLs handled here.
const maxHTULen = 4096

func validHost(h string) bool {
	if h[0] == '[' {
		return validIPv6(h[1 : len(h)-1])
	}
	// DNS names and IPv4 literals only: percent-encoded or sub-delim
	// reg-names are legal URI syntax but no proxy origin uses them, and
	// parsers disagree about them.
	for k := 0; k < len(h); k++ {
		c := h[k]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// pathChar reports whether c may appear literally in a path segment
// (RFC 3986 section 3.3: pchar = unreserved / pct-encoded / sub-delims / ":" / "@").
func pathChar(c byte) bool {
	return uri.IsUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@/", c) >= 0
}

// normalizePath applies RFC 3986 sections 6.2.2.1-6.2.2.3 to a raw path.
func normalizePath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !uri.IsHex(p[i+1]) || !uri.IsHex(p[i+2]) {
				return "", errHTU
			}
			d := uri.Unhex(p[i+1])<<4 | uri.Unhex(p[i+2])
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
	return removeDotSegments(string(b)), nil
}

// removeDotSegments is RFC 3986 section 5.2.4 for an absolute path.
func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	segs := strings.Split(p, "/")[1:]
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// validIPv6 reports whether s is an IPv6 address in text form, without a
// zone: RFC 3986 section 3.2.2's IPv6address (RFC 4291 section 2.2), eight
// groups of one to four hex digits, at most one "::" standing for one or
// more zero groups, the last two groups possibly a dotted IPv4 address. It
// accepts exactly what netip.ParseAddr accepts as an IPv6 address without
// a zone (a fuzz test holds them together); net/netip itself would add
// about 10 KB gzip to the browser build, through unique.
func validIPv6(s string) bool {
	groups, ellipsis, i := 0, false, 0
	if strings.HasPrefix(s, "::") {
		ellipsis, i = true, 2
	}
	for i < len(s) {
		j := i
		for j < len(s) && j-i < 5 && isHexDigit(s[j]) {
			j++
		}
		if j < len(s) && s[j] == '.' {
			// The IPv4 tail: two groups' worth, and the end.
			if !validIPv4(s[i:]) {
				return false
			}
			groups += 2
			break
		}
		if n := j - i; n == 0 || n > 4 {
			return false
		}
		groups++
		if i = j; i == len(s) {
			break
		}
		if s[i] != ':' {
			return false
		}
		if i++; i == len(s) {
			return false // a single trailing colon
		}
		if s[i] == ':' {
			if ellipsis {
				return false
			}
			ellipsis = true
			i++
		}
	}
	if ellipsis {
		return groups <= 7
	}
	return groups == 8
}

// validIPv4 reports whether s is a dotted-decimal IPv4 address as
// netip.ParseAddr reads one: four decimal fields 0-255, no leading zeros.
func validIPv4(s string) bool {
	fields := 0
	for i := 0; i <= len(s); {
		j := i
		v := 0
		for j < len(s) && '0' <= s[j] && s[j] <= '9' && j-i < 3 {
			v = v*10 + int(s[j]-'0')
			j++
		}
		n := j - i
		if n == 0 || v > 255 || n > 1 && s[i] == '0' {
			return false
		}
		if fields++; j == len(s) {
			return fields == 4
		}
		if s[j] != '.' || fields == 4 {
			return false
		}
		i = j + 1
	}
	return false
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
