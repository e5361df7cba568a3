package client

import (
	"errors"
	"slices"
	"strings"
)

// The client builds its form bodies and reads issuer URLs without
// net/url, which would add about 70 KB gzip to the browser build (with
// net/netip and unique, which it pulls in).

// encodeForm is url.Values.Encode: application/x-www-form-urlencoded
// (https://url.spec.whatwg.org/#urlencoded-serializing), keys sorted,
// bytes other than A-Z a-z 0-9 - _ . ~ percent-encoded, space as "+".
func encodeForm(form map[string][]string) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b []byte
	for _, k := range keys {
		for _, v := range form[k] {
			if len(b) > 0 {
				b = append(b, '&')
			}
			b = appendFormEscaped(b, k)
			b = append(b, '=')
			b = appendFormEscaped(b, v)
		}
	}
	return string(b)
}

func appendFormEscaped(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b = append(b, c)
		case c == ' ':
			b = append(b, '+')
		default:
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return b
}

var errIssuerURL = errors.New("keyless: issuer is not an absolute http(s) URL")

// splitIssuer splits an issuer URL into scheme://authority and its path
// (RFC 3986 section 3), refusing what RFC 8414 section 2 forbids of an
// issuer (a query or fragment), userinfo, and a path that is not already
// a valid URI path (raw spaces or controls, a bad percent-escape).
func splitIssuer(issuer string) (base, path string, err error) {
	if origin(issuer) == "" || strings.ContainsAny(issuer, "?#") {
		return "", "", errIssuerURL
	}
	i := strings.Index(issuer, "://") + 3
	j := strings.IndexByte(issuer[i:], '/')
	if j < 0 {
		return issuer, "", nil
	}
	base, path = issuer[:i+j], issuer[i+j:]
	for k := 0; k < len(path); k++ {
		switch c := path[k]; {
		case c <= ' ' || c == 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' || c == '{' || c == '|' || c == '}':
			return "", "", errIssuerURL
		case c == '%':
			if k+2 >= len(path) || !isHex(path[k+1]) || !isHex(path[k+2]) {
				return "", "", errIssuerURL
			}
		}
	}
	return base, path, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
