package scan

import (
	"encoding/base64"
	"strings"
)

// mayDecode reports whether gitleaks's decoding pass could find anything
// in text: an encoded segment that decodes to printable text. When it
// cannot, the scanner runs gitleaks with decoding off, which gives the
// same findings (its decode loop stops at the first pass that finds no
// segment) without the cost of its encodings regexp, about half of all
// scan time on JS bundles.
//
// The test is a superset of gitleaks's (detect/codec): it answers true
// for any percent or Unicode escape, any run of 32 hex digits, and any
// base64-looking run that decodes to printable ASCII, as gitleaks
// decodes it.
func mayDecode(text string) bool {
	if i := strings.IndexByte(text, '%'); i >= 0 && hasPercentEscape(text[i:]) {
		return true
	}
	if hasUnicodeEscape(text) {
		return true
	}
	for i := 0; i < len(text); {
		if !isB64Run(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isB64Run(text[j]) {
			j++
		}
		if j-i >= 16 && b64RunDecodes(text, i, j) {
			return true
		}
		i = j
	}
	return false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// isB64Run is gitleaks's base64 class, [\w/+-].
func isB64Run(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '/' || c == '+' || c == '-'
}

func hasPercentEscape(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
	}
	return false
}

// hasUnicodeEscape finds U+XXXX and \uXXXX (either case).
func hasUnicodeEscape(s string) bool {
	for i := 0; i+5 < len(s); i++ {
		if (s[i] == 'U' && s[i+1] == '+' || s[i] == '\\' && (s[i+1] == 'u' || s[i+1] == 'U')) &&
			isHex(s[i+2]) && isHex(s[i+3]) && isHex(s[i+4]) && isHex(s[i+5]) {
			return true
		}
	}
	return false
}

// b64RunDecodes reports whether the maximal [\w/+-] run text[i:j] could
// be a segment gitleaks decodes: it starts with 32 hex digits (its hex
// encoding wins there), or, with up to two '=' after it, it decodes as
// standard or unpadded URL base64 to printable ASCII.
func b64RunDecodes(text string, i, j int) bool {
	if j-i >= 32 {
		hex := true
		for k := i; k < i+32; k++ {
			if !isHex(text[k]) {
				hex = false
				break
			}
		}
		if hex {
			return true
		}
	}
	seg := text[i:j]
	if !strings.ContainsAny(seg, "0123456789+/-_") {
		return false // gitleaks's likelyBase64Chars
	}
	for k := j; k < len(text) && k < j+2 && text[k] == '='; k++ {
		seg = text[i : k+1]
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(seg); err == nil && printable(b) {
			return true
		}
	}
	return false
}

// printable is a superset of gitleaks's printable ASCII: tab, line
// breaks and 0x20-0x7e.
func printable(b []byte) bool {
	for _, c := range b {
		if !(c >= 0x20 && c <= 0x7e || c >= '\t' && c <= '\r') {
			return false
		}
	}
	return true
}
