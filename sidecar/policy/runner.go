package policy

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultTestTime is the evaluation time of a test case that gives none: a
// fixed instant (Monday 2026-01-05 12:00 UTC), so tests never depend on
// when they run.
var DefaultTestTime = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

// TestCase is one test written beside the policy:
//
//   - name: ops may write, clamped
//     given: {subject: alice, app: orders-app, scopes: [orders:write], ttl: 1h}
//     expect: {decision: allow, scopes: [orders:write], ttl: 5m, rule: ops-write}
type TestCase struct {
	Name   string `yaml:"name"`
	Given  Given  `yaml:"given"`
	Expect Expect `yaml:"expect"`

	// Line is where the case is defined.
	Line int `yaml:"-"`
}

// Given is a test case's request.
type Given struct {
	Subject string   `yaml:"subject"`
	App     string   `yaml:"app"`
	Groups  []string `yaml:"groups"`
	Scopes  []string `yaml:"scopes"`
	TTL     Duration `yaml:"ttl"`
	// Issuer is the subject token's iss URL, for conditions.
	Issuer string `yaml:"issuer"`
	// IssuerName is the external issuer (vending.issuers[].name) the
	// subject comes from; empty: keyless's own users.
	IssuerName string `yaml:"issuer_name"`
	// Time is an RFC 3339 timestamp; zero means DefaultTestTime.
	Time time.Time `yaml:"time"`
}

// Expect is what a test case expects; empty fields are not checked.
type Expect struct {
	// Decision is allow or deny; required.
	Decision string `yaml:"decision"`
	// Scopes granted, compared as sets.
	Scopes []string `yaml:"scopes"`
	// TTL granted.
	TTL Duration `yaml:"ttl"`
	// Rule that decided.
	Rule string `yaml:"rule"`
	// Deny code (unknown_app, invalid_scope, no_rule, denied_by_rule,
	// ttl_over_cap).
	Deny DenyCode `yaml:"deny"`
	// Preview lease.
	Preview *bool `yaml:"preview"`
	// Clamped TTL.
	Clamped *bool `yaml:"clamped"`
}

// UnmarshalYAML records the case's line and refuses unknown fields.
func (tc *TestCase) UnmarshalYAML(n *yaml.Node) error {
	type plain TestCase
	var p plain
	err := decodeStrict(n, &p)
	*tc = TestCase(p)
	tc.Line = n.Line
	return err
}

// Result is the outcome of one test case.
type Result struct {
	Case     TestCase
	Got      Decision
	Problems []string // empty: passed
}

// Passed reports whether the case passed.
func (r Result) Passed() bool { return len(r.Problems) == 0 }

// RunTests evaluates every test case against p.
func (p *Policy) RunTests(cases []TestCase) []Result {
	out := make([]Result, 0, len(cases))
	for _, tc := range cases {
		g := tc.Given
		when := g.Time
		if when.IsZero() {
			when = DefaultTestTime
		}
		d := p.Evaluate(Request{
			App: g.App, Subject: g.Subject, Groups: g.Groups, Scopes: g.Scopes,
			TTL: g.TTL.D(), Issuer: g.Issuer, IssuerName: g.IssuerName, Time: when,
		})
		out = append(out, Result{Case: tc, Got: d, Problems: check(tc.Expect, d)})
	}
	return out
}

func check(e Expect, d Decision) []string {
	var probs []string
	bad := func(what string, got, want any) {
		probs = append(probs, fmt.Sprintf("%s: got %v, want %v", what, got, want))
	}
	got := "deny"
	if d.Allow {
		got = "allow"
	}
	if got != e.Decision {
		why := d.Reason
		if d.Rule != "" {
			why += " (rule " + d.Rule + ")"
		}
		bad("decision", got+": "+why, e.Decision)
		return probs
	}
	if e.Scopes != nil {
		gs, ws := slices.Sorted(slices.Values(d.Scopes)), slices.Sorted(slices.Values(uniq(e.Scopes)))
		if !slices.Equal(gs, ws) {
			bad("scopes", "["+strings.Join(gs, " ")+"]", "["+strings.Join(ws, " ")+"]")
		}
	}
	if e.TTL != 0 && d.TTL != e.TTL.D() {
		bad("ttl", d.TTL, e.TTL.D())
	}
	if e.Rule != "" && d.Rule != e.Rule {
		bad("rule", quoteEmpty(d.Rule), e.Rule)
	}
	if e.Deny != "" && d.Deny != e.Deny {
		bad("deny", quoteEmpty(string(d.Deny)), e.Deny)
	}
	if e.Preview != nil && d.Preview != *e.Preview {
		bad("preview", d.Preview, *e.Preview)
	}
	if e.Clamped != nil && d.Clamped != *e.Clamped {
		bad("clamped", d.Clamped, *e.Clamped)
	}
	return probs
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// Output formats for [Report].
const (
	// FormatText is go-test-like: "--- PASS: name (file:line)".
	FormatText = "text"
	// FormatGitHub adds GitHub Actions "::error file=,line=::" annotations
	// for failures.
	FormatGitHub = "github"
)

// Report writes results for CI and returns the number of failures.
func Report(w io.Writer, file, format string, results []Result) int {
	failed := 0
	for _, r := range results {
		pos := fmt.Sprintf("%s:%d", file, r.Case.Line)
		if r.Passed() {
			fmt.Fprintf(w, "--- PASS: %s (%s)\n", r.Case.Name, pos)
			continue
		}
		failed++
		fmt.Fprintf(w, "--- FAIL: %s (%s)\n", r.Case.Name, pos)
		for _, pr := range r.Problems {
			fmt.Fprintf(w, "    %s\n", pr)
		}
		if format == FormatGitHub {
			fmt.Fprintf(w, "::error file=%s,line=%d::policy test %q failed: %s\n",
				file, r.Case.Line, r.Case.Name, strings.Join(r.Problems, "; "))
		}
	}
	if failed > 0 {
		fmt.Fprintf(w, "FAIL\t%s\t%d of %d policy tests failed\n", file, failed, len(results))
	} else {
		fmt.Fprintf(w, "ok\t%s\t%d policy tests passed\n", file, len(results))
	}
	return failed
}
