package scan

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/logging"
	"github.com/zricethezav/gitleaks/v8/regexp"
)

// baseConfig is gitleaks's default rule set plus keyless's own
// regex rules, built once: gitleaks parses its TOML through viper's
// package-global instance, which is not safe for concurrent use.
var baseConfig = sync.OnceValues(func() (config.Config, error) {
	// gitleaks logs slow fragments and skipped files at info and warn
	// level; a library caller reports those through Report.Skipped.
	logging.Logger = logging.Logger.Level(zerolog.ErrorLevel)
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(config.DefaultConfig)); err != nil {
		return config.Config{}, fmt.Errorf("scan: gitleaks default config: %w", err)
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		return config.Config{}, fmt.Errorf("scan: gitleaks default config: %w", err)
	}
	cfg, err := vc.Translate()
	if err != nil {
		return config.Config{}, fmt.Errorf("scan: gitleaks default config: %w", err)
	}
	// keyless finds and judges JWTs itself (jwt.go), lifetimes included;
	// gitleaks's jwt regex starts with \b, which keeps Go's regexp from
	// skipping ahead to its "ey" prefix, and "ey" is in every chunk.
	delete(cfg.Rules, "jwt")
	cfg.OrderedRules = slices.DeleteFunc(cfg.OrderedRules, func(id string) bool { return id == "jwt" })
	for _, r := range extraRules() {
		cfg.Rules[r.RuleID] = r
		cfg.OrderedRules = append(cfg.OrderedRules, r.RuleID)
	}
	cfg.Keywords = map[string]struct{}{}
	for _, r := range cfg.Rules {
		for _, k := range r.Keywords {
			cfg.Keywords[strings.ToLower(k)] = struct{}{}
		}
	}
	return cfg, nil
})

// extraRules are regex rules gitleaks's default set lacks and micro apps
// need. They run inside the gitleaks engine, so they get its keyword
// prefilter, decoding passes and allowlists.
func extraRules() []config.Rule {
	return []config.Rule{{
		RuleID:      "connection-string-password",
		Description: "Database or broker connection string with an embedded password.",
		// scheme://user:password@host; the password group excludes
		// obvious placeholders through the allowlist below.
		Regex:       regexp.MustCompile(`(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|clickhouse|cockroachdb)://[^:@/\s'"\x60]{1,100}:([^@/\s'"\x60]{3,200})@[\w.-]+`),
		SecretGroup: 1,
		Keywords:    []string{"postgres", "mysql", "mariadb", "mongodb", "redis", "amqp", "mssql", "sqlserver", "clickhouse", "cockroachdb"},
		Allowlists: []*config.Allowlist{{
			Regexes: []*regexp.Regexp{regexp.MustCompile(`(?i)^(?:\$\{?[\w.]+\}?|<[^>]*>|\{\{[^}]*\}\}|\*+|x+|password|passwd|pass|secret|changeme|example|redacted|%[\w()]+s?)$`)},
		}},
	}}
}

// severities maps rule ids to a severity. Rules not listed are high:
// a provider token in a shipped bundle is a live credential.
var severities = map[string]Severity{
	"private-key":                SeverityCritical,
	"private-jwk":                SeverityCritical,
	"symmetric-jwk":              SeverityCritical,
	"aws-access-token":           SeverityCritical,
	"gcp-api-key":                SeverityHigh,
	"connection-string-password": SeverityHigh,
	"generic-api-key":            SeverityMedium,
	"jwt-no-expiry":              SeverityHigh,
	"jwt-long-lived":             SeverityHigh,
	"jwt":                        SeverityMedium,
	"jwt-short-lived":            SeverityLow,
	"jwt-expired":                SeverityLow,
}

// severityOf returns the severity of a rule id.
func severityOf(ruleID string) Severity {
	if s, ok := severities[ruleID]; ok {
		return s
	}
	switch {
	case strings.Contains(ruleID, "test"), strings.Contains(ruleID, "client-id"), strings.HasSuffix(ruleID, "-pub-key"), strings.Contains(ruleID, "public-key"):
		// Test-mode keys and public identifiers are worth a look, not a
		// failed build.
		return SeverityLow
	}
	return SeverityHigh
}

// ownRules describes the rule ids keyless adds outside gitleaks's
// engine, for SARIF's rules[] and --help.
var ownRules = map[string]string{
	"jwt-no-expiry":   "JWT with no exp claim: it never expires.",
	"jwt-long-lived":  "JWT that lives longer than a day.",
	"jwt":             "JWT that lives longer than an hour.",
	"jwt-short-lived": "JWT that lives an hour or less but is not a sender-constrained keyless lease.",
	"jwt-expired":     "Expired JWT: not usable, but a sign that tokens are baked into the build.",
	"private-jwk":     "Private JWK (d member): a signing or DPoP private key.",
	"symmetric-jwk":   "Symmetric JWK (kty oct with k): a shared secret key.",
}

// RuleDescription returns the description of a rule id: gitleaks's for
// its rules, keyless's for its own, empty for an unknown id.
func RuleDescription(id string) string {
	if d, ok := ownRules[id]; ok {
		return d
	}
	cfg, err := baseConfig()
	if err != nil {
		return ""
	}
	return cfg.Rules[id].Description
}
