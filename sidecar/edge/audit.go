package edge

import (
	"encoding/hex"
	"time"

	"github.com/keyless-dev/keyless/sidecar/proxy/auditline"
	"github.com/keyless-dev/keyless/sidecar/proxy/check"
)

// Decision is what the audit line of one request says, in the fields of
// the process proxy's "proxy decision" line (docs/audit.md): who (app,
// subject, lease, jti, a hash prefix of the token, never the token), what
// (method, canonical path, route), the rule that refused, and when. The
// status is known only once the answer is made, so the runtime writes the
// line with [Decision.Line] (the Worker: console.log, for Logpush).
type Decision struct {
	start   time.Time
	now     func() time.Time
	Method  string
	Path    string
	Remote  string
	Route   string
	TokenID string
	Client  string
	Sub     string
	Lease   string
	JTI     string
	// Rule and Cause are set on a refusal: the check that refused, and
	// the internal reason (at most 200 bytes).
	Rule   string
	Cause  string
	server bool // a 5xx the chain chose: decision "error"
	claims bool // the lease was read: client, sub, lease and jti are written
}

func (h *Handler) decision(x *exchange, e *check.Error) *Decision {
	d := &Decision{start: x.start, now: h.now, Method: x.r.Method, Path: x.path, Remote: x.r.ClientIP}
	if x.route != nil {
		d.Route = x.route.Name
	}
	if x.token != "" {
		d.TokenID = hex.EncodeToString(x.tokenSum[:8])
	}
	if c := x.claims; c != nil {
		d.Client, d.Sub, d.Lease, d.JTI, d.claims = c.ClientID, c.Subject, c.LeaseID, c.JTI, true
	}
	if e != nil {
		d.fail(e)
	}
	return d
}

func (d *Decision) fail(e *check.Error) {
	d.Rule = e.RuleName()
	if e.Err != nil {
		d.Cause = e.Err.Error()
		if len(d.Cause) > 200 {
			d.Cause = d.Cause[:200]
		}
	}
	d.server = check.Status(e.Code) >= 500
}

// Line renders the audit line for the answer's status: decision allow,
// deny (a refusal the chain chose) or error (a 5xx, level WARN), encoded
// as the process proxy encodes its own (sidecar/proxy/auditline).
func (d *Decision) Line(status int) []byte {
	now := d.now()
	l := auditline.Decision{Level: "INFO", Decision: "allow", Status: status, Method: d.Method, Path: d.Path,
		LatencyMS: float64(now.Sub(d.start)) / float64(time.Millisecond), Remote: d.Remote,
		Rule: d.Rule, HasCause: d.Cause != "", Cause: d.Cause, HasRoute: d.Route != "", Route: d.Route, TokenID: d.TokenID,
		HasClaims: d.claims, Client: d.Client, Sub: d.Sub, Lease: d.Lease, JTI: d.JTI}
	if d.Rule != "" {
		l.Decision = "deny"
		if d.server {
			l.Decision, l.Level = "error", "WARN"
		}
	}
	return l.AppendJSON(make([]byte, 0, 512), now.UTC())
}
