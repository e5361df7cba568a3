// Package scan finds long-lived secrets in what micro-app builders ship:
// directories, single files, exported bundles (.zip, .tar, .tar.gz,
// nested archives), minified JS, source maps, HTML, .env files, and a git
// repository's history.
//
// The rule set is gitleaks's default configuration, used as a library
// (github.com/zricethezav/gitleaks/v8/detect), so provider token formats
// stay maintained upstream. On top of it the package adds what micro apps
// need and gitleaks does not judge:
//
//   - JWTs are decoded and reported with their lifetime: no exp or a long
//     one is a finding, a short one is low severity, and a keyless lease
//     (an RFC 9068 at+jwt with cnf.jkt and an exp within [LeaseMaxTTL]) is
//     recognised as short-lived and not reported at all;
//   - a private or symmetric JWK (a JSON object with "kty" and "d" or "k",
//     e.g. a DPoP key exported from the browser) is critical;
//   - connection strings with a password (postgres://user:pass@host).
//
// # Entry points
//
// [New] builds a [Scanner]; [Scanner.ScanPaths] walks files, directories
// and archives; [Scanner.ScanGit] walks every blob reachable from a
// repository's refs. Both return a [Report]; [WriteText], [WriteJSON] and
// [WriteSARIF] render it.
//
// # Bounded work
//
// Text is scanned in chunks of about 128 KiB, never whole files, and each
// file or archive entry is scanned up to [Limits.MaxFileSize]. Archives
// are read as streams (zip needs random access: a nested zip is held in
// memory up to 32 MiB, or spooled to a temporary file). Archive bombs are
// refused with a [Skip] that says which limit tripped: nesting depth,
// compression ratio, or total uncompressed size. Symlinks are followed
// only when they resolve inside the scanned root; symlinks inside archives
// are never followed.
package scan

import (
	"fmt"
	"strings"
)

// Severity orders findings; --fail-on compares against it.
type Severity int

// Severities, lowest first.
const (
	SeverityInfo Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity parses a severity name (case-insensitive).
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(name, n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("scan: unknown severity %q (want %s)", name, strings.Join(severityNames[:], ", "))
}

// MarshalText writes the severity's name, so JSON carries "high", not 3.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Finding is one secret found. It never holds the secret itself: only
// [Finding.Excerpt], a redacted form.
type Finding struct {
	// RuleID names the rule: a gitleaks rule id (aws-access-token,
	// github-pat, ...) or one of keyless's own (jwt-no-expiry,
	// jwt-long-lived, jwt, jwt-short-lived, private-jwk, symmetric-jwk,
	// connection-string-password).
	RuleID string `json:"rule_id"`
	// Description says what was found; for JWTs it includes the lifetime.
	Description string `json:"description"`
	// Severity drives --fail-on.
	Severity Severity `json:"severity"`
	// File is the path as given, with "!/" before each path inside a
	// container: "app.zip!/dist/main.js", or "dist/main.js.map!/src/api.js"
	// for an original source carried in a source map's sourcesContent.
	File string `json:"file"`
	// Line and Column are 1-based, within the innermost file of File.
	Line   int `json:"line"`
	Column int `json:"column"`
	// Excerpt is the redacted secret (see [Redact]).
	Excerpt string `json:"excerpt"`
	// Commit is the commit that introduced the blob, for git history
	// scans; empty otherwise.
	Commit string `json:"commit,omitempty"`

	blob string // git blob id, to find Commit after the scan
}

// Skip records input that was not (fully) scanned, and why.
type Skip struct {
	// Path is in the same form as [Finding.File].
	Path string `json:"path"`
	// Reason is a sentence for people.
	Reason string `json:"reason"`
	// Refused is true when a safety limit (archive bomb, nesting, total
	// size) stopped the scan, as opposed to unreadable or oversized input.
	Refused bool `json:"refused,omitempty"`
}

// Report is the result of one scan. Findings are sorted by file, line,
// column and rule.
type Report struct {
	Findings []Finding `json:"findings"`
	Skipped  []Skip    `json:"skipped"`
	// Files counts the files and archive entries scanned as text.
	Files int64 `json:"files"`
	// Bytes counts the (uncompressed) bytes scanned as text.
	Bytes int64 `json:"bytes"`
	// Leases counts JWTs recognised as keyless leases and not reported.
	Leases int64 `json:"leases"`
}

// Max returns the highest severity among the findings, and false when
// there are none.
func (r *Report) Max() (Severity, bool) {
	if len(r.Findings) == 0 {
		return 0, false
	}
	m := SeverityInfo
	for _, f := range r.Findings {
		m = max(m, f.Severity)
	}
	return m, true
}
