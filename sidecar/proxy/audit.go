package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"
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
	d := decision{
		level:     level,
		decision:  verdict,
		status:    status,
		method:    x.r.Method,
		path:      x.path,
		latencyMS: float64(lat) / float64(time.Millisecond),
		remote:    x.r.RemoteAddr,
		rule:      rule,
		tokenID:   x.tokenID,
		ticket:    x.ticket,
		websocket: x.upgrade,
	}
	if x.err != nil && x.err.Err != nil {
		d.hasCause, d.cause = true, truncate(x.err.Err.Error(), 200)
	}
	if x.route != nil {
		d.hasRoute, d.route = true, x.route.Name
	}
	if c := x.claims; c != nil {
		d.hasClaims, d.client, d.sub, d.lease, d.jti = true, c.ClientID, c.Subject, c.LeaseID, c.JTI
	}
	if p.auditOut != nil {
		d.write(p.auditOut)
		return
	}
	d.log(p.log)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}
