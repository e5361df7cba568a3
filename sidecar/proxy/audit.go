package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/proxy/auditline"
)

// audit writes the one JSON line per decision: who (app, subject, lease,
// token jti and hash prefix, never the token), what (method, canonical
// path, route), the decision and the rule that made it, status and latency.
func (p *Proxy) audit(x *exchange) {
	lat := p.now().Sub(x.start)
	verdict, rule, level := "allow", "", slog.LevelInfo
	status := x.w.status
	if status == 0 {
		status = http.StatusOK
	}
	if x.err != nil {
		verdict, rule = "deny", x.err.RuleName()
		if statusOf(x.err.Code) >= 500 {
			verdict, level = "error", slog.LevelWarn
		}
	}
	p.metrics.observe(verdict, rule, lat)
	if !p.log.Enabled(context.Background(), level) {
		return
	}
	d := auditline.Decision{
		Level:     level.String(),
		Decision:  verdict,
		Status:    status,
		Method:    x.r.Method,
		Path:      x.path,
		LatencyMS: float64(lat) / float64(time.Millisecond),
		Remote:    x.r.RemoteAddr,
		Rule:      rule,
		TokenID:   x.tokenID,
		Ticket:    x.ticket,
		WebSocket: x.upgrade,
	}
	if x.err != nil && x.err.Err != nil {
		d.HasCause, d.Cause = true, truncate(x.err.Err.Error(), 200)
	}
	if x.route != nil {
		d.HasRoute, d.Route = true, x.route.Name
	}
	if c := x.claims; c != nil {
		d.HasClaims, d.Client, d.Sub, d.Lease, d.JTI = true, c.ClientID, c.Subject, c.LeaseID, c.JTI
	}
	if p.auditOut != nil {
		writeDecision(p.auditOut, &d)
		return
	}
	p.log.LogAttrs(context.Background(), level, auditline.Msg, decisionAttrs(&d)...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}
