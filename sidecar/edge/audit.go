package edge

import (
	"encoding/hex"
	"encoding/json"
	"time"

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
		d.Client, d.Sub, d.Lease, d.JTI = c.ClientID, c.Subject, c.LeaseID, c.JTI
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

// auditLine is the JSON line, field for field the proxy's slog record.
type auditLine struct {
	Time      string  `json:"time"`
	Level     string  `json:"level"`
	Msg       string  `json:"msg"`
	Decision  string  `json:"decision"`
	Status    int     `json:"status"`
	Method    string  `json:"method"`
	Path      string  `json:"path"`
	LatencyMS float64 `json:"latency_ms"`
	Remote    string  `json:"remote"`
	Rule      string  `json:"rule,omitempty"`
	Cause     string  `json:"cause,omitempty"`
	Route     string  `json:"route,omitempty"`
	TokenID   string  `json:"token_sha256,omitempty"`
	Client    string  `json:"client,omitempty"`
	Sub       string  `json:"sub,omitempty"`
	Lease     string  `json:"lease,omitempty"`
	JTI       string  `json:"jti,omitempty"`
}

// Line renders the audit line for the answer's status: decision allow,
// deny (a refusal the chain chose) or error (a 5xx, level WARN).
func (d *Decision) Line(status int) []byte {
	now := d.now()
	l := auditLine{Time: now.UTC().Format(time.RFC3339Nano), Level: "INFO", Msg: "proxy decision", Decision: "allow",
		Status: status, Method: d.Method, Path: d.Path, LatencyMS: float64(now.Sub(d.start)) / float64(time.Millisecond),
		Remote: d.Remote, Rule: d.Rule, Cause: d.Cause, Route: d.Route, TokenID: d.TokenID,
		Client: d.Client, Sub: d.Sub, Lease: d.Lease, JTI: d.JTI}
	if d.Rule != "" {
		l.Decision = "deny"
		if d.server {
			l.Decision, l.Level = "error", "WARN"
		}
	}
	b, _ := json.Marshal(l)
	return b
}
