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
	decision, rule, level := "allow", "", slog.LevelInfo
	status := x.w.status
	if status == 0 {
		status = http.StatusOK
	}
	if x.err != nil {
		decision, rule = "deny", x.err.RuleName()
		if statusOf(x.err.Code) >= 500 {
			decision, level = "error", slog.LevelWarn
		}
	}
	p.metrics.observe(decision, rule, lat)
	if !p.log.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("decision", decision),
		slog.Int("status", status),
		slog.String("method", x.r.Method),
		slog.String("path", x.path),
		slog.Float64("latency_ms", float64(lat)/float64(time.Millisecond)),
		slog.String("remote", x.r.RemoteAddr),
	)
	if rule != "" {
		attrs = append(attrs, slog.String("rule", rule))
	}
	if x.err != nil && x.err.Err != nil {
		attrs = append(attrs, slog.String("cause", truncate(x.err.Err.Error(), 200)))
	}
	if x.route != nil {
		attrs = append(attrs, slog.String("route", x.route.Name))
	}
	if x.tokenID != "" {
		attrs = append(attrs, slog.String("token_sha256", x.tokenID))
	}
	if c := x.claims; c != nil {
		attrs = append(attrs,
			slog.String("client", c.ClientID),
			slog.String("sub", c.Subject),
			slog.String("lease", c.LeaseID),
			slog.String("jti", c.JTI),
		)
	}
	if x.ticket {
		attrs = append(attrs, slog.Bool("ticket", true))
	}
	if x.upgrade {
		attrs = append(attrs, slog.Bool("websocket", true))
	}
	p.log.LogAttrs(context.Background(), level, "proxy decision", attrs...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}
