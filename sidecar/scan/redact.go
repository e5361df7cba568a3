package scan

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Redact returns a form of secret safe to print: its first four
// characters, an ellipsis and its length, e.g. "AKIA…(20 chars)". Short
// secrets show fewer characters (at most a quarter of them) so that no
// secret is ever printed whole. A PEM block shows its BEGIN line, which
// names the key type and is not secret.
func Redact(secret string) string {
	secret = strings.TrimSpace(secret)
	n := utf8.RuneCountInString(secret)
	if strings.HasPrefix(secret, "-----BEGIN") {
		if i := strings.Index(secret[5:], "-----"); i >= 0 {
			return fmt.Sprintf("%s…(%d chars)", secret[:i+10], n)
		}
	}
	show := min(4, n/4)
	var b strings.Builder
	for _, r := range secret {
		if show == 0 {
			break
		}
		b.WriteRune(r)
		show--
	}
	fmt.Fprintf(&b, "…(%d chars)", n)
	return b.String()
}
