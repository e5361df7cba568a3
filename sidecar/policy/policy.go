// Package policy is keyless's policy-as-code for token vending: which
// subjects or groups may lease which scopes of which app, for how long, and
// under which conditions.
//
// A policy is YAML, either a file of its own or the `policy:` section of the
// keyless configuration. [Load], [Parse] and [FromNode] read it strictly
// (unknown fields are errors), compile every CEL condition and report every
// problem at once, each prefixed with file:line. [Policy.Evaluate] is a pure
// function from a [Request] to a [Decision]: the vending service calls it,
// and so does [Policy.RunTests], which runs the test cases written beside the
// rules (`keyless policy test FILE`).
//
// # Format
//
//	defaults:
//	  max_ttl: 15m          # lease TTL cap; default 15m, never above 1h
//	  renew_limit: 8h       # absolute lifetime of a renewal family
//	groups:
//	  ops: [alice]          # group -> subjects (added to groups from the caller)
//	apps:
//	  orders-app:           # the client_id
//	    preview: false      # true: leases are preview-only (proxy answers from examples)
//	    max_ttl: 30m        # app cap: replaces the default cap, never above 1h
//	    resources: [https://api.example.test]   # allowed resource/audience values
//	    scopes:             # every scope the app may lease, and its kind
//	      orders:read: read
//	      orders:write: write
//	    quota:
//	      per_subject_per_hour: 60
//	      per_app_per_hour: 1000
//	    rules:              # first match decides
//	      - name: office-hours-only
//	        effect: deny
//	        subjects: ["*"]
//	        when: time.getHours("UTC") < 6
//	      - name: ops-write
//	        groups: [ops]
//	        scopes: [orders:read, orders:write]
//	        write: true     # write scopes need this: read-only by default
//	        max_ttl: 5m
//	tests:
//	  - name: ops may write
//	    given: {subject: alice, app: orders-app, scopes: [orders:write], ttl: 1h}
//	    expect: {decision: allow, scopes: [orders:write], ttl: 5m, rule: ops-write}
//
// # Decisions
//
// A request naming no scopes gets the read scopes of the first matching
// allow rule. A request naming scopes is allowed by the first rule (in file
// order) whose subjects or groups match, whose `when` holds, and whose scopes
// cover every requested scope; a deny rule that matches first refuses (a
// deny rule naming scopes matches only a request touching one of them; a
// request naming none touches the app's read scopes). A
// requested TTL above the cap is clamped (docs/security.md#d6) unless the
// deciding rule says `refuse_ttl_over_cap: true`; a scope above the grant is
// refused.
package policy

import (
	"fmt"
	"time"

	"cel.dev/cel-go/cel"
	"go.yaml.in/yaml/v3"
)

// TTL limits (docs/security.md#windows): 15 minutes by default, never above
// an hour.
const (
	// DefaultMaxTTL caps a lease when neither defaults, app nor rule says
	// otherwise.
	DefaultMaxTTL = 15 * time.Minute
	// MaxTTL is the hard cap; a policy naming more is refused at load.
	MaxTTL = time.Hour
	// DefaultRenewLimit is the absolute lifetime of a renewal family.
	DefaultRenewLimit = 8 * time.Hour
	// MaxRenewLimit caps renew_limit.
	MaxRenewLimit = 7 * 24 * time.Hour
)

// Policy is a parsed, validated policy. The zero value denies everything.
type Policy struct {
	// Defaults apply to every app.
	Defaults Defaults `yaml:"defaults"`
	// Groups maps a group name to its member subjects. A subject's groups
	// are these plus those the caller supplies (Request.Groups).
	Groups map[string][]string `yaml:"groups"`
	// Apps maps a client_id to its rules; an app not listed gets nothing.
	Apps map[string]*App `yaml:"apps"`
	// Tests are the test cases written beside the policy.
	Tests []TestCase `yaml:"tests"`

	// File names the source in error messages and test output.
	File string `yaml:"-"`
}

// Defaults are the policy-wide limits. Zero values take the package
// defaults.
type Defaults struct {
	// MaxTTL caps every lease; zero means DefaultMaxTTL.
	MaxTTL Duration `yaml:"max_ttl"`
	// RenewLimit is the absolute lifetime of a renewal family; zero means
	// DefaultRenewLimit.
	RenewLimit Duration `yaml:"renew_limit"`
}

// ScopeKind says whether a scope only reads. Write scopes are granted only
// by rules that say `write: true`, so a policy is read-only by default.
type ScopeKind string

// Scope kinds.
const (
	Read  ScopeKind = "read"
	Write ScopeKind = "write"
)

// App is the policy for one client_id.
type App struct {
	// Preview marks every lease of the app preview-only: the proxy answers
	// it from configured example responses and never forwards it.
	Preview bool `yaml:"preview"`
	// MaxTTL caps this app's leases; zero means the default cap. It may be
	// above the default cap (up to MaxTTL): an app cap replaces it.
	MaxTTL Duration `yaml:"max_ttl"`
	// RenewLimit overrides Defaults.RenewLimit; a negative value ("-1s")
	// is refused at load; zero means the default.
	RenewLimit Duration `yaml:"renew_limit"`
	// NoRenewal: leases of this app come without a renewal token.
	NoRenewal bool `yaml:"no_renewal"`
	// Resources are the resource/audience values a lease may name (RFC
	// 8707); empty means only the vending service's own audience.
	Resources []string `yaml:"resources"`
	// Scopes lists every scope the app may lease and whether it writes.
	Scopes map[string]ScopeKind `yaml:"scopes"`
	// Quota bounds how many leases are vended.
	Quota Quota `yaml:"quota"`
	// Rules are tried in order; the first that matches decides.
	Rules []*Rule `yaml:"rules"`

	// Line is where the app is defined.
	Line int `yaml:"-"`
}

// Quota bounds lease issuance (renewals are not counted). Zero means no
// limit. The vending service enforces it; Evaluate only reports it.
type Quota struct {
	PerSubjectPerHour int `yaml:"per_subject_per_hour"`
	PerAppPerHour     int `yaml:"per_app_per_hour"`
}

// Effect is what a matching rule does.
type Effect string

// Effects.
const (
	Allow Effect = "allow"
	Deny  Effect = "deny"
)

// Rule grants (or, with effect deny, refuses) scopes to subjects or groups.
type Rule struct {
	// Name identifies the rule in decisions and audit lines; empty means
	// "rules[i]".
	Name string `yaml:"name"`
	// Effect is allow (the default) or deny.
	Effect Effect `yaml:"effect"`
	// Subjects the rule applies to; "*" is any subject.
	Subjects []string `yaml:"subjects"`
	// Groups the rule applies to (any one suffices).
	Groups []string `yaml:"groups"`
	// Issuer is the name of the external issuer (vending.issuers[].name)
	// whose subjects the rule applies to; "*" is every issuer, keyless's
	// own included. Empty: keyless's own issuer only, so an external
	// "alice" never gets the rules of the local "alice"
	// (docs/identity-providers.md).
	Issuer string `yaml:"issuer"`
	// Scopes granted (allow) or refused (deny; empty means every scope).
	Scopes []string `yaml:"scopes"`
	// Write must be true for an allow rule to grant a write scope.
	Write bool `yaml:"write"`
	// MaxTTL caps leases granted by this rule below the app's cap.
	MaxTTL Duration `yaml:"max_ttl"`
	// RefuseTTLOverCap refuses a TTL above the cap instead of clamping it.
	RefuseTTLOverCap bool `yaml:"refuse_ttl_over_cap"`
	// When is a CEL condition over subject, groups, app, scopes, issuer,
	// ttl and time; empty means always. An evaluation error means the
	// rule does not match (fail closed for allow rules; a deny rule whose
	// condition errors does deny, for the same reason).
	When string `yaml:"when"`

	// Line is where the rule is defined.
	Line int `yaml:"-"`

	prog cel.Program
}

// Duration is a time.Duration written "15m", "1h30m".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if n.Kind != yaml.ScalarNode || n.Decode(&s) != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: duration must be a string such as \"15m\"", n.Line)}}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid duration %q", n.Line, s)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML records the app's line and refuses unknown fields.
func (a *App) UnmarshalYAML(n *yaml.Node) error {
	type plain App
	var p plain
	err := decodeStrict(n, &p)
	*a = App(p)
	a.Line = n.Line
	return err
}

// UnmarshalYAML records the rule's line and refuses unknown fields.
func (r *Rule) UnmarshalYAML(n *yaml.Node) error {
	type plain Rule
	var p plain
	err := decodeStrict(n, &p)
	*r = Rule(p)
	r.Line = n.Line
	return err
}

// App returns the app with this client_id, or nil.
func (p *Policy) App(id string) *App {
	if p == nil {
		return nil
	}
	return p.Apps[id]
}

// ttlCap is the cap for leases of app decided by rule (rule may be nil).
func (p *Policy) ttlCap(app *App, rule *Rule) time.Duration {
	c := p.Defaults.MaxTTL.D()
	if c <= 0 {
		c = DefaultMaxTTL
	}
	if app != nil && app.MaxTTL > 0 {
		c = app.MaxTTL.D()
	}
	if rule != nil && rule.MaxTTL > 0 && rule.MaxTTL.D() < c {
		c = rule.MaxTTL.D()
	}
	return min(c, MaxTTL)
}

// RenewLimit is the absolute lifetime of a renewal family of app; zero
// when the app has no renewal.
func (p *Policy) RenewLimit(app *App) time.Duration {
	if app != nil && app.NoRenewal {
		return 0
	}
	l := p.Defaults.RenewLimit.D()
	if l <= 0 {
		l = DefaultRenewLimit
	}
	if app != nil && app.RenewLimit > 0 {
		l = app.RenewLimit.D()
	}
	return min(l, MaxRenewLimit)
}

// MaxRenewLimit is the longest renewal family any app of p can have: how
// long a subject, app or key revocation must be remembered.
func (p *Policy) MaxRenewLimit() time.Duration {
	l := p.RenewLimit(nil)
	for _, a := range p.Apps {
		l = max(l, p.RenewLimit(a))
	}
	return l
}
