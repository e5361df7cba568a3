package policy

import (
	"slices"
	"time"
)

// Request is what a lease asks for.
type Request struct {
	// App is the client_id.
	App string
	// Subject is the authenticated subject (the subject token's sub).
	Subject string
	// Groups are groups the caller vouches for (e.g. from the identity
	// provider); the policy's own groups are added to them.
	Groups []string
	// Scopes requested; empty means the read scopes of the matching rule.
	Scopes []string
	// TTL requested; zero means the cap.
	TTL time.Duration
	// Issuer of the subject token (its iss URL), for conditions.
	Issuer string
	// IssuerName is the configured name of the external issuer the
	// subject comes from; empty for keyless's own issuer. Rules apply
	// to the subjects of their own issuer only (Rule.Issuer), and the
	// policy's groups list keyless's own subjects only.
	IssuerName string
	// Time is the evaluation time, for conditions; the caller's clock.
	Time time.Time
}

// DenyCode says why a request was refused. The vending service maps each
// to an OAuth error.
type DenyCode string

// Deny codes.
const (
	// DenyUnknownApp: no such app in the policy (invalid_client).
	DenyUnknownApp DenyCode = "unknown_app"
	// DenyScope: a requested scope is not the app's, or above what any
	// matching rule grants (invalid_scope, docs/security.md#d6).
	DenyScope DenyCode = "invalid_scope"
	// DenyNoRule: no rule applies to this subject (access_denied).
	DenyNoRule DenyCode = "no_rule"
	// DenyRule: a deny rule matched (access_denied).
	DenyRule DenyCode = "denied_by_rule"
	// DenyTTL: TTL over the cap and the rule refuses rather than clamps.
	DenyTTL DenyCode = "ttl_over_cap"
)

// Decision is the outcome of [Policy.Evaluate].
type Decision struct {
	// Allow is true when a lease may be vended.
	Allow bool
	// Deny says why not; empty when allowed.
	Deny DenyCode
	// Scopes granted, in request order (or the rule's order for a request
	// naming none).
	Scopes []string
	// TTL granted, after clamping to Cap.
	TTL time.Duration
	// Cap is the TTL cap that applied.
	Cap time.Duration
	// Clamped is true when the requested TTL was above Cap.
	Clamped bool
	// Preview marks a preview-only lease.
	Preview bool
	// RenewLimit is the absolute lifetime of the lease's renewal family;
	// zero: no renewal token.
	RenewLimit time.Duration
	// Quota is the app's quota, enforced by the caller.
	Quota Quota
	// Rule names the rule that decided; empty when none did.
	Rule string
	// Reason is a short human explanation for audit lines and test output.
	// It may quote policy names, never request values.
	Reason string
}

// Evaluate decides a request. It is pure: no clock (Request.Time), no I/O,
// safe for concurrent use.
func (p *Policy) Evaluate(req Request) Decision {
	app := p.App(req.App)
	if app == nil {
		return Decision{Deny: DenyUnknownApp, Reason: "app not in policy"}
	}
	scopes := uniq(req.Scopes)
	for _, s := range scopes {
		if _, ok := app.Scopes[s]; !ok {
			return Decision{Deny: DenyScope, Reason: "a requested scope is not one of the app's scopes"}
		}
	}
	groups := slices.Clone(req.Groups)
	if req.IssuerName == "" {
		groups = p.groupsOf(req.Subject, req.Groups)
	}
	act := vars{
		subject: req.Subject, app: req.App, issuer: req.Issuer, groups: groups,
		scopes: scopes, ttl: max(req.TTL, 0), time: req.Time,
	}.activation()

	var identityMatched *Rule
	for _, r := range app.Rules {
		if !r.forIssuer(req.IssuerName) || !r.appliesTo(req.Subject, groups) {
			continue
		}
		if r.Effect == Deny {
			// A deny rule naming scopes applies when the request touches
			// one of them; a request naming none can get at most the
			// app's read scopes, so those are what it touches.
			touched := scopes
			if len(touched) == 0 {
				touched = app.readScopes()
			}
			if len(r.Scopes) > 0 && !intersects(r.Scopes, touched) {
				continue
			}
			// A deny rule whose condition cannot be evaluated denies:
			// failing closed means refusing.
			if ok, err := r.holds(act); !ok && err == nil {
				continue
			}
			return Decision{Deny: DenyRule, Rule: r.Name, Reason: "denied by rule"}
		}
		if ok, _ := r.holds(act); !ok {
			continue
		}
		identityMatched = r
		var grant []string
		if len(scopes) == 0 {
			for _, s := range r.Scopes {
				if app.Scopes[s] == Read {
					grant = append(grant, s)
				}
			}
			if len(grant) == 0 {
				continue
			}
		} else if containsAll(r.Scopes, scopes) {
			grant = scopes
		} else {
			continue
		}
		return p.allow(app, r, grant, req.TTL)
	}
	if identityMatched != nil {
		return Decision{Deny: DenyScope, Rule: identityMatched.Name, Reason: "requested scopes are above what the matching rules grant"}
	}
	return Decision{Deny: DenyNoRule, Reason: "no rule grants this subject anything"}
}

// allow builds the decision of an allow rule, clamping (or refusing) the
// TTL.
func (p *Policy) allow(app *App, r *Rule, grant []string, ttl time.Duration) Decision {
	c := p.ttlCap(app, r)
	d := Decision{
		Allow: true, Scopes: slices.Clone(grant), Cap: c, TTL: c, Preview: app.Preview,
		RenewLimit: p.RenewLimit(app), Quota: app.Quota, Rule: r.Name, Reason: "allowed by rule",
	}
	switch {
	case ttl <= 0:
	case ttl > c && r.RefuseTTLOverCap:
		return Decision{Deny: DenyTTL, Cap: c, Rule: r.Name, Reason: "requested TTL is over the cap and the rule refuses"}
	case ttl > c:
		d.Clamped = true
		d.Reason = "allowed by rule; TTL clamped to the cap"
	default:
		d.TTL = ttl
	}
	return d
}

// readScopes are the app's read scopes, sorted.
func (a *App) readScopes() []string {
	var out []string
	for s, k := range a.Scopes {
		if k == Read {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func (r *Rule) appliesTo(sub string, groups []string) bool {
	for _, s := range r.Subjects {
		if s == "*" || s == sub {
			return true
		}
	}
	return intersects(r.Groups, groups)
}

// forIssuer reports whether the rule covers subjects of the issuer named
// name ("" for keyless's own).
func (r *Rule) forIssuer(name string) bool {
	return r.Issuer == "*" || r.Issuer == name
}

// Issuers lists the external issuer names the policy's rules name
// (without "*"), for the caller to check against its configuration.
func (p *Policy) Issuers() []string {
	var out []string
	for _, a := range p.Apps {
		for _, r := range a.Rules {
			if r.Issuer != "" && r.Issuer != "*" && !slices.Contains(out, r.Issuer) {
				out = append(out, r.Issuer)
			}
		}
	}
	slices.Sort(out)
	return out
}

// holds evaluates the rule's condition; no condition holds.
func (r *Rule) holds(act map[string]any) (bool, error) {
	if r.prog == nil {
		return true, nil
	}
	return eval(r.prog, act)
}

// groupsOf is the caller's groups plus the policy groups listing sub,
// sorted and unique.
func (p *Policy) groupsOf(sub string, given []string) []string {
	out := slices.Clone(given)
	for g, members := range p.Groups {
		if slices.Contains(members, sub) {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func uniq(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func intersects(a, b []string) bool {
	for _, v := range a {
		if slices.Contains(b, v) {
			return true
		}
	}
	return false
}

func containsAll(have, want []string) bool {
	for _, v := range want {
		if !slices.Contains(have, v) {
			return false
		}
	}
	return true
}
