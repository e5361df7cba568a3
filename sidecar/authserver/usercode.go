package authserver

import (
	"crypto/rand"
	"strings"
)

// userCodeAlphabet is 20 consonants without vowels (no words) and without
// look-alikes: RFC 8628 section 6.1 suggests exactly this base-20 set.
// 8 characters give 20^8 ≈ 2^34.6 codes.
//
// https://www.rfc-editor.org/rfc/rfc8628#section-6.1
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

const userCodeLen = 8

// newUserCode returns 8 uniformly random characters of the alphabet
// (rejection sampling, no modulo bias).
func newUserCode() (string, error) {
	var out [userCodeLen]byte
	var buf [32]byte
	n := 0
	for n < userCodeLen {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", err
		}
		for _, b := range buf {
			if b >= 240 { // 240 = 12 * 20
				continue
			}
			out[n] = userCodeAlphabet[b%20]
			if n++; n == userCodeLen {
				break
			}
		}
	}
	return string(out[:]), nil
}

// formatUserCode shows a normalized code as XXXX-XXXX.
func formatUserCode(c string) string {
	if len(c) != userCodeLen {
		return c
	}
	return c[:4] + "-" + c[4:]
}

// normalizeUserCode maps what a person typed to the stored form: case
// folded, spaces and punctuation dropped (RFC 8628 section 6.1: "the
// characters of the user code should be case insensitive ... and
// punctuation ignored"). It reports false for anything that is not 8
// characters of the alphabet, so "BCDF-GHJ" is simply invalid. Input is
// bounded before any work.
func normalizeUserCode(s string) (string, bool) {
	if len(s) > 64 {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c == '-' || c == ' ' || c == '.' || c == '_' || c == '\t':
			continue
		}
		if strings.IndexByte(userCodeAlphabet, c) < 0 {
			return "", false
		}
		b.WriteByte(c)
	}
	if b.Len() != userCodeLen {
		return "", false
	}
	return b.String(), true
}
