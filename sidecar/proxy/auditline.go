package proxy

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
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

// decision is one audit line's fields (docs/audit.md#proxy-sidecarproxy),
// in the order they are written. rule, token_sha256, ticket and websocket
// are left out when empty or false; cause, route and the lease's fields
// when their has flag is unset.
type decision struct {
	level     slog.Level
	decision  string
	status    int
	method    string
	path      string
	latencyMS float64
	remote    string
	rule      string
	hasCause  bool
	cause     string
	hasRoute  bool
	route     string
	tokenID   string
	hasClaims bool
	client    string
	sub       string
	lease     string
	jti       string
	ticket    bool
	websocket bool
}

// attrs are d's fields for a slog handler other than [NewAuditLogger]'s.
func (d *decision) attrs() []slog.Attr {
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("decision", d.decision),
		slog.Int("status", d.status),
		slog.String("method", d.method),
		slog.String("path", d.path),
		slog.Float64("latency_ms", d.latencyMS),
		slog.String("remote", d.remote),
	)
	if d.rule != "" {
		attrs = append(attrs, slog.String("rule", d.rule))
	}
	if d.hasCause {
		attrs = append(attrs, slog.String("cause", d.cause))
	}
	if d.hasRoute {
		attrs = append(attrs, slog.String("route", d.route))
	}
	if d.tokenID != "" {
		attrs = append(attrs, slog.String("token_sha256", d.tokenID))
	}
	if d.hasClaims {
		attrs = append(attrs,
			slog.String("client", d.client),
			slog.String("sub", d.sub),
			slog.String("lease", d.lease),
			slog.String("jti", d.jti),
		)
	}
	if d.ticket {
		attrs = append(attrs, slog.Bool("ticket", true))
	}
	if d.websocket {
		attrs = append(attrs, slog.Bool("websocket", true))
	}
	return attrs
}

// log writes d through logger's handler.
func (d *decision) log(logger *slog.Logger) {
	logger.LogAttrs(context.Background(), d.level, decisionMsg, d.attrs()...)
}

const decisionMsg = "proxy decision"

// appendJSON appends d as the JSON line slog's JSON handler writes for a
// record at t: time, level, msg, then the fields, and a newline.
func (d *decision) appendJSON(b []byte, t time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, d.level.String()...)
	b = append(b, `","msg":"`+decisionMsg+`"`...)
	b = appendField(b, "decision", d.decision)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(d.status), 10)
	b = appendField(b, "method", d.method)
	b = appendField(b, "path", d.path)
	b = append(b, `,"latency_ms":`...)
	b = appendJSONFloat(b, d.latencyMS)
	b = appendField(b, "remote", d.remote)
	if d.rule != "" {
		b = appendField(b, "rule", d.rule)
	}
	if d.hasCause {
		b = appendField(b, "cause", d.cause)
	}
	if d.hasRoute {
		b = appendField(b, "route", d.route)
	}
	if d.tokenID != "" {
		b = appendField(b, "token_sha256", d.tokenID)
	}
	if d.hasClaims {
		b = appendField(b, "client", d.client)
		b = appendField(b, "sub", d.sub)
		b = appendField(b, "lease", d.lease)
		b = appendField(b, "jti", d.jti)
	}
	if d.ticket {
		b = append(b, `,"ticket":true`...)
	}
	if d.websocket {
		b = append(b, `,"websocket":true`...)
	}
	return append(b, "}\n"...)
}

// linePool holds the buffers lines are encoded into.
var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// write encodes d and writes it to w in one Write.
func (d *decision) write(w io.Writer) {
	bp := linePool.Get().(*[]byte)
	// The record's time, as slog takes it: now, without the monotonic
	// reading.
	b := d.appendJSON((*bp)[:0], time.Now().Round(0))
	w.Write(b) // a failed line is the writer's to report (Options.Audit)
	if cap(b) <= 16<<10 {
		*bp = b
		linePool.Put(bp)
	}
}

// appendField appends ,"name":"value" with value escaped as the slog JSON
// handler escapes strings. name needs no escaping.
func appendField(b []byte, name, value string) []byte {
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":"`...)
	b = appendJSONString(b, value)
	return append(b, '"')
}

// appendJSONString escapes s for a JSON string (RFC 8259 section 7) the
// way log/slog's JSON handler does: '"', '\\' and control characters are
// escaped (\n, \r, \t by name, the rest as \u00XX), invalid UTF-8 becomes
// \ufffd, and U+2028 and U+2029 are escaped; everything else, '<', '>' and
// '&' included, is copied.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// appendJSONFloat appends f as encoding/json writes a float64 (which the
// slog JSON handler uses): the shortest decimal, in exponent form below
// 1e-6 and from 1e21, with e-07 shortened to e-7. f is finite (a
// latency).
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
