package proxy

import (
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/proxy/auditline"
)

// NewAuditLogger returns a logger that writes JSON lines to w exactly as
// slog.New(slog.NewJSONHandler(w, nil)) does, and that a [Proxy] given it
// as Options.Logger recognizes: the proxy then encodes its decision lines
// itself, into a reused buffer, the same bytes with no allocation per
// line, still one Write per line. w need not be safe for concurrent use:
// every line, the proxy's and the handler's, is written under one lock.
func NewAuditLogger(w io.Writer) *slog.Logger {
	lw := &lockedWriter{w: w}
	return slog.New(&auditHandler{Handler: slog.NewJSONHandler(lw, nil), w: lw})
}

// auditHandler is the JSON handler of [NewAuditLogger], marked so the
// proxy can find its writer. WithAttrs and WithGroup return the plain
// JSON handler's, so a derived logger (whose lines carry more fields) is
// never taken for one the proxy may write itself.
type auditHandler struct {
	slog.Handler
	w *lockedWriter
}

// lockedWriter serializes the writes of the handler and of the proxy's
// own encoder.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// auditWriter is the writer behind logger when it came from
// [NewAuditLogger], else nil.
func auditWriter(logger *slog.Logger) *lockedWriter {
	if h, ok := logger.Handler().(*auditHandler); ok {
		return h.w
	}
	return nil
}

// decisionAttrs are d's fields for a slog handler other than
// [NewAuditLogger]'s, which writes the same line through
// auditline.Decision.AppendJSON.
func decisionAttrs(d *auditline.Decision) []slog.Attr {
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("decision", d.Decision),
		slog.Int("status", d.Status),
		slog.String("method", d.Method),
		slog.String("path", d.Path),
		slog.Float64("latency_ms", d.LatencyMS),
		slog.String("remote", d.Remote),
	)
	if d.Rule != "" {
		attrs = append(attrs, slog.String("rule", d.Rule))
	}
	if d.HasCause {
		attrs = append(attrs, slog.String("cause", d.Cause))
	}
	if d.HasRoute {
		attrs = append(attrs, slog.String("route", d.Route))
	}
	if d.TokenID != "" {
		attrs = append(attrs, slog.String("token_sha256", d.TokenID))
	}
	if d.HasClaims {
		attrs = append(attrs,
			slog.String("client", d.Client),
			slog.String("sub", d.Sub),
			slog.String("lease", d.Lease),
			slog.String("jti", d.JTI),
		)
	}
	if d.Ticket {
		attrs = append(attrs, slog.Bool("ticket", true))
	}
	if d.WebSocket {
		attrs = append(attrs, slog.Bool("websocket", true))
	}
	return attrs
}

// linePool holds the buffers lines are encoded into.
var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeDecision encodes d and writes it to w in one Write.
func writeDecision(w io.Writer, d *auditline.Decision) {
	bp := linePool.Get().(*[]byte)
	// The record's time, as slog takes it: now, without the monotonic
	// reading.
	b := d.AppendJSON((*bp)[:0], time.Now().Round(0))
	w.Write(b) // a failed line is the writer's to report (Options.Audit)
	if cap(b) <= 16<<10 {
		*bp = b
		linePool.Put(bp)
	}
}
