// Package audit reads keyless audit logs: the JSON lines that `keyless dev`,
// `keyless serve` and `keyless proxy` write (DATA/audit.log), one slog
// record per event. It holds no I/O policy beyond reading: [Parse] turns a
// line into a [Line], [Filter.Match] selects lines, [Scan] reads a stream
// and counts malformed lines instead of failing on them, and [Follow]
// reads what is appended to a file.
//
// The field names are the stable ones documented in docs/audit.md. Two
// components name the app differently (the proxy says "client", the
// authorization server and vending service "client_id") and the proxy's
// lines carry no "event" (their message is "proxy decision"); [Parse]
// folds both into [Line.Client] and [Line.Event] so a filter means the
// same thing on every line.
package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ProxyEvent is the event name given to the proxy's "proxy decision" lines,
// which carry no event field of their own.
const ProxyEvent = "proxy.decision"

// MaxLineBytes bounds one audit line; a longer line is malformed (an audit
// line is a few hundred bytes; this keeps a corrupt file from costing
// memory).
const MaxLineBytes = 64 << 10

// ErrMalformed is returned by [Parse] for a line that is not a JSON object
// with a valid "time".
var ErrMalformed = errors.New("audit: malformed line")

// Line is one parsed audit line.
type Line struct {
	// Raw is the line as written, without its newline.
	Raw []byte
	// Time is the record's time (slog's "time").
	Time time.Time
	// Level is slog's level (INFO, WARN, ...).
	Level string
	// Msg is slog's message.
	Msg string
	// Event is the "event" field, or [ProxyEvent] for proxy decisions.
	Event string
	// Client is "client_id", or the proxy's "client".
	Client string
	// Sub is the subject ("sub").
	Sub string
	// Decision is the proxy's "decision" (allow, deny, error); empty on
	// other lines.
	Decision string
	// Fields holds every field of the record, strings, numbers (as
	// json.Number) and booleans as decoded.
	Fields map[string]any
}

// Parse parses one audit line. A line that is not a JSON object, or whose
// "time" is missing or not RFC 3339, is [ErrMalformed].
func Parse(b []byte) (Line, error) {
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 || len(b) > MaxLineBytes || b[0] != '{' {
		return Line{}, ErrMalformed
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil || d.More() {
		return Line{}, ErrMalformed
	}
	if _, err := d.Token(); err != io.EOF {
		return Line{}, ErrMalformed
	}
	ts, _ := m["time"].(string)
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return Line{}, ErrMalformed
	}
	l := Line{Raw: b, Time: t, Fields: m,
		Level: str(m, "level"), Msg: str(m, "msg"), Event: str(m, "event"),
		Client: str(m, "client_id"), Sub: str(m, "sub"), Decision: str(m, "decision")}
	if l.Client == "" {
		l.Client = str(m, "client")
	}
	if l.Event == "" && l.Msg == "proxy decision" {
		l.Event = ProxyEvent
	}
	return l, nil
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// Field returns field k as text ("" when absent): strings as they are,
// numbers and booleans as JSON writes them.
func (l Line) Field(k string) string {
	switch v := l.Fields[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// Filter selects lines. Zero fields match everything.
type Filter struct {
	// Since and Until bound Time: Since <= Time < Until.
	Since, Until time.Time
	// Client, Sub and Decision must equal the line's.
	Client, Sub, Decision string
	// Event equals the line's event, or, ending in "." or ".*", is a
	// prefix of it ("lease." matches lease.issue and lease.deny).
	Event string
}

// Match reports whether l passes f.
func (f Filter) Match(l Line) bool {
	switch {
	case !f.Since.IsZero() && l.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && !l.Time.Before(f.Until):
		return false
	case f.Client != "" && l.Client != f.Client:
		return false
	case f.Sub != "" && l.Sub != f.Sub:
		return false
	case f.Decision != "" && l.Decision != f.Decision:
		return false
	}
	if f.Event != "" {
		if p, ok := strings.CutSuffix(f.Event, "*"); ok || strings.HasSuffix(f.Event, ".") {
			if !ok {
				p = f.Event
			}
			return strings.HasPrefix(l.Event, p)
		}
		return l.Event == f.Event
	}
	return true
}

// ParseTime reads a --since or --until value: an RFC 3339 time, or a
// duration back from now ("90s", "15m", "1h", "7d").
func ParseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 36500 {
			return time.Time{}, fmt.Errorf("audit: %q is not a duration like 1h or 7d, nor an RFC 3339 time", s)
		}
		return now.Add(-time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("audit: %q is not a duration like 1h or 7d, nor an RFC 3339 time", s)
	}
	return now.Add(-d), nil
}

// Scan reads audit lines from r and calls fn for each well-formed one, in
// order, until r ends or fn returns false. It returns how many lines were
// malformed (skipped: not JSON, no time, longer than [MaxLineBytes]); err
// is only a read error. A last line without its newline is read too.
func Scan(r io.Reader, fn func(Line) bool) (malformed int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, rerr := readLine(br)
		if len(b) > 0 {
			if l, perr := Parse(b); perr != nil {
				malformed++
			} else if !fn(l) {
				return malformed, nil
			}
		}
		if rerr == io.EOF {
			return malformed, nil
		}
		if rerr != nil {
			return malformed, rerr
		}
	}
}

// readLine returns the next line without its newline; a line longer than
// MaxLineBytes comes back as a sentinel that Parse refuses, its excess
// discarded, so memory stays bounded.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(buf)+len(frag) <= MaxLineBytes+1 {
			buf = append(buf, frag...)
		} else {
			buf = tooLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimRight(buf, "\n"), err
	}
}

// tooLong stands for a line over MaxLineBytes: not an object, so malformed.
var tooLong = []byte("!")

// Ring keeps the last N lines given to Add: what `audit tail` prints.
type Ring struct {
	n     int
	lines []Line
	next  int
}

// NewRing returns a Ring of n lines (n < 1 keeps none).
func NewRing(n int) *Ring { return &Ring{n: max(n, 0)} }

// Add keeps l, dropping the oldest line when full.
func (r *Ring) Add(l Line) {
	if r.n == 0 {
		return
	}
	if len(r.lines) < r.n {
		r.lines = append(r.lines, l)
		return
	}
	r.lines[r.next] = l
	r.next = (r.next + 1) % r.n
}

// Lines returns the kept lines, oldest first.
func (r *Ring) Lines() []Line {
	return append(append([]Line(nil), r.lines[r.next:]...), r.lines[:r.next]...)
}
