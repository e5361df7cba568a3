// Package auditline encodes the "proxy decision" audit line
// (docs/audit.md) that the process proxy and the edge Worker write for
// every request: the JSON that log/slog's JSON handler writes for the same
// record, appended to a buffer without reflection or allocation, so one
// encoder serves both (the Worker, in WebAssembly, paid for
// encoding/json's reflection on every request). It does not import
// log/slog, which the Worker does not link.
package auditline

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Msg is the line's message.
const Msg = "proxy decision"

// Decision is one line's fields, in the order they are written. Rule,
// TokenID, Ticket and WebSocket are left out when empty or false; Cause,
// Route and the lease's fields when their Has flag is unset.
type Decision struct {
	// Level is "INFO", or "WARN" for a 5xx the chain chose (slog's level
	// names).
	Level     string
	Decision  string // allow, deny or error
	Status    int
	Method    string
	Path      string
	LatencyMS float64
	Remote    string
	Rule      string
	HasCause  bool
	Cause     string
	HasRoute  bool
	Route     string
	TokenID   string
	HasClaims bool
	Client    string
	Sub       string
	Lease     string
	JTI       string
	Ticket    bool
	WebSocket bool
}

// AppendJSON appends d as the JSON line slog's JSON handler writes for a
// record at t: time, level, msg, then the fields, and a newline.
func (d *Decision) AppendJSON(b []byte, t time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, d.Level...)
	b = append(b, `","msg":"`+Msg+`"`...)
	b = appendField(b, "decision", d.Decision)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(d.Status), 10)
	b = appendField(b, "method", d.Method)
	b = appendField(b, "path", d.Path)
	b = append(b, `,"latency_ms":`...)
	b = appendJSONFloat(b, d.LatencyMS)
	b = appendField(b, "remote", d.Remote)
	if d.Rule != "" {
		b = appendField(b, "rule", d.Rule)
	}
	if d.HasCause {
		b = appendField(b, "cause", d.Cause)
	}
	if d.HasRoute {
		b = appendField(b, "route", d.Route)
	}
	if d.TokenID != "" {
		b = appendField(b, "token_sha256", d.TokenID)
	}
	if d.HasClaims {
		b = appendField(b, "client", d.Client)
		b = appendField(b, "sub", d.Sub)
		b = appendField(b, "lease", d.Lease)
		b = appendField(b, "jti", d.JTI)
	}
	if d.Ticket {
		b = append(b, `,"ticket":true`...)
	}
	if d.WebSocket {
		b = append(b, `,"websocket":true`...)
	}
	return append(b, "}\n"...)
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
