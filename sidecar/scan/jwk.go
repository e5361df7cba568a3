package scan

import (
	"regexp"
	"strings"
)

// jwkKty finds a JWK's key type member, quoted (JSON) or not (a JS object
// literal after minification).
var jwkKty = regexp.MustCompile(`(?:"kty"|\bkty)\s*:\s*"(EC|RSA|OKP|oct)"`)

// jwkPrivate finds the private member of a JWK: "d" for EC, RSA and OKP
// keys (RFC 7518 section 6.2.2.1, RFC 8037), "k" for symmetric keys
// (section 6.4.1). Values are base64url.
var (
	jwkD = regexp.MustCompile(`(?:"d"|[{,\s]d)\s*:\s*"([A-Za-z0-9_-]{16,})"`)
	jwkK = regexp.MustCompile(`(?:"k"|[{,\s]k)\s*:\s*"([A-Za-z0-9_-]{16,})"`)
)

// jwkMatch is one private JWK found in a text: Start and End are the
// byte offsets of the private value, Kty its key type.
type jwkMatch struct {
	Start, End int
	Kty        string
}

// findJWKs returns the private JWKs in text: objects whose kty member is
// followed or preceded, within the same braces, by "d" (or "k" for oct).
// A public JWK (no d) is not reported.
func findJWKs(text string) []jwkMatch {
	if !strings.Contains(text, "kty") {
		return nil // the regexp has no literal prefix to skip ahead with
	}
	var out []jwkMatch
	seen := map[int]bool{}
	for _, m := range jwkKty.FindAllStringSubmatchIndex(text, -1) {
		lo, hi, ok := enclosingObject(text, m[0])
		if !ok {
			continue
		}
		kty := text[m[2]:m[3]]
		re := jwkD
		if kty == "oct" {
			re = jwkK
		}
		v := re.FindStringSubmatchIndex(text[lo:hi])
		if v == nil || seen[lo+v[2]] {
			continue
		}
		seen[lo+v[2]] = true
		out = append(out, jwkMatch{Start: lo + v[2], End: lo + v[3], Kty: kty})
	}
	return out
}

// maxJWK bounds how far findJWKs looks for a key's braces: an RSA private
// JWK with CRT members is about 3.3 KiB.
const maxJWK = 8 << 10

// enclosingObject returns the bounds of the innermost {...} around pos,
// looking at most maxJWK bytes either way. It counts braces without
// parsing strings: JWK members are base64url and never contain braces.
func enclosingObject(text string, pos int) (lo, hi int, ok bool) {
	depth := 0
	lo = -1
	for i := pos; i >= 0 && pos-i < maxJWK; i-- {
		switch text[i] {
		case '}':
			depth++
		case '{':
			if depth == 0 {
				lo = i
			} else {
				depth--
			}
		}
		if lo >= 0 {
			break
		}
	}
	if lo < 0 {
		return 0, 0, false
	}
	depth = 0
	for i := pos; i < len(text) && i-pos < maxJWK; i++ {
		switch text[i] {
		case '{':
			depth++
		case '}':
			if depth == 0 {
				return lo, i + 1, true
			}
			depth--
		}
	}
	return 0, 0, false
}
