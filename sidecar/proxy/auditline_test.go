package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/proxy/auditline"
)

// slogLine is the line slog's JSON handler writes for d at t: what
// appendJSON must reproduce byte for byte.
func slogLine(t testing.TB, d *auditline.Decision, at time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	level := slog.LevelInfo
	if d.Level == "WARN" {
		level = slog.LevelWarn
	}
	r := slog.NewRecord(at, level, auditline.Msg, 0)
	r.AddAttrs(decisionAttrs(d)...)
	if err := slog.NewJSONHandler(&buf, nil).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecisionLineMatchesSlog(t *testing.T) {
	east := time.FixedZone("east", 5*3600+30*60)
	full := auditline.Decision{
		Level: "WARN", Decision: "deny", Status: 401, Method: "GET", Path: "/v1/orders",
		LatencyMS: 1.25, Remote: "127.0.0.1:5555", Rule: "dpop.iat", HasCause: true, Cause: "dpop: iat is too old",
		HasRoute: true, Route: "orders-read", TokenID: "0011223344556677", HasClaims: true,
		Client: "app1", Sub: "alice", Lease: "lease-1", JTI: "j1", Ticket: true, WebSocket: true,
	}
	with := func(f func(d *auditline.Decision)) auditline.Decision { d := full; f(&d); return d }
	tests := map[string]auditline.Decision{
		"every field":      full,
		"allow, no extras": {Level: "INFO", Decision: "allow", Status: 200, Method: "GET", Path: "/x", LatencyMS: 0.5, Remote: "[::1]:1"},
		"empty strings kept where slog keeps them": with(func(d *auditline.Decision) {
			d.Method, d.Path, d.Remote, d.Cause, d.Route, d.Client, d.Sub, d.Lease, d.JTI = "", "", "", "", "", "", "", "", ""
		}),
		"escapes": with(func(d *auditline.Decision) {
			d.Path = "/a\"b\\c\n\r\t\x00\x1f\x7f<>&'/é😀"
			d.Cause = "bad \xff utf-8 \xc3 and \u2028 \u2029 separators"
			d.Sub = "\"\\"
		}),
		"zero latency":         with(func(d *auditline.Decision) { d.LatencyMS = 0 }),
		"tiny latency":         with(func(d *auditline.Decision) { d.LatencyMS = 1e-7 }),
		"small latency":        with(func(d *auditline.Decision) { d.LatencyMS = 0.000001 }),
		"huge latency":         with(func(d *auditline.Decision) { d.LatencyMS = 1e21 }),
		"negative latency":     with(func(d *auditline.Decision) { d.LatencyMS = -3.5e-9 }),
		"large latency":        with(func(d *auditline.Decision) { d.LatencyMS = 123456789.123456789 }),
		"max float":            with(func(d *auditline.Decision) { d.LatencyMS = math.MaxFloat64 }),
		"error level":          with(func(d *auditline.Decision) { d.Level, d.Decision, d.Status = "WARN", "error", 503 }),
		"long cause truncated": with(func(d *auditline.Decision) { d.Cause = truncate(strings.Repeat("é", 150), 200) }),
	}
	times := []time.Time{
		time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 28, 10, 0, 0, 120000000, east),
		time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.Local),
		time.Now(),
	}
	for name, d := range tests {
		for _, at := range times {
			want := slogLine(t, &d, at.Round(0))
			if got := d.AppendJSON(nil, at.Round(0)); !bytes.Equal(got, want) {
				t.Errorf("%s at %v:\n got %s\nwant %s", name, at, got, want)
			}
		}
	}
}

// FuzzDecisionLine compares the proxy's encoder with slog's JSON handler
// on arbitrary strings, numbers and flags.
func FuzzDecisionLine(f *testing.F) {
	f.Add("deny", 401, "GET", "/v1/orders", 1.25, "127.0.0.1:1", "dpop", "cause \xff\u2028", "route", "abc", "app", "sub", "lease", "jti", true, true, int64(1800000000123456789))
	f.Fuzz(func(t *testing.T, dec string, status int, method, path string, lat float64, remote, rule, cause, route, tokenID, client, sub, lease, jti string, flag, ws bool, ns int64) {
		if math.IsNaN(lat) || math.IsInf(lat, 0) {
			return // a latency is finite
		}
		at := time.Unix(0, ns)
		if y := at.Year(); y < 0 || y >= 10000 {
			return
		}
		d := auditline.Decision{Level: "INFO", Decision: dec, Status: status, Method: method, Path: path, LatencyMS: lat,
			Remote: remote, Rule: rule, HasCause: flag, Cause: cause, HasRoute: !flag, Route: route, TokenID: tokenID,
			HasClaims: ws, Client: client, Sub: sub, Lease: lease, JTI: jti, Ticket: flag, WebSocket: ws}
		want := slogLine(t, &d, at)
		if got := d.AppendJSON(nil, at); !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}

func TestDecisionLineNoAllocations(t *testing.T) {
	d := auditline.Decision{Level: "INFO", Decision: "allow", Status: 200, Method: "GET", Path: "/v1/orders", LatencyMS: 0.8,
		Remote: "127.0.0.1:5555", HasRoute: true, Route: "orders-read", TokenID: "0011223344556677",
		HasClaims: true, Client: "app1", Sub: "alice", Lease: "lease-1", JTI: "j1"}
	w := auditWriter(NewAuditLogger(io.Discard))
	if w == nil {
		t.Fatal("NewAuditLogger's writer not found")
	}
	writeDecision(w, &d) // fill the pool
	if n := testing.AllocsPerRun(100, func() { writeDecision(w, &d) }); n != 0 {
		t.Errorf("allocations per decision line = %v, want 0", n)
	}
}

func TestAuditLoggerIsJSONHandler(t *testing.T) {
	var a, b bytes.Buffer
	at := time.Date(2026, 11, 28, 10, 0, 0, 5, time.UTC)
	for _, l := range []*slog.Logger{slog.New(slog.NewJSONHandler(&a, nil)), NewAuditLogger(&b)} {
		r := slog.NewRecord(at, slog.LevelWarn, "store.unavailable", 0)
		r.AddAttrs(slog.String("err", "x\ny"), slog.Group("g", slog.Int("n", 1)))
		l.Handler().Handle(context.Background(), r)
		l.Handler().WithAttrs([]slog.Attr{slog.String("component", "proxy")}).Handle(context.Background(), r)
		l.Debug("not written")
	}
	if a.String() != b.String() {
		t.Errorf("NewAuditLogger wrote\n%s\nslog's JSON handler\n%s", b.String(), a.String())
	}
	// A derived logger writes more fields: the proxy must not write
	// decision lines past it.
	if auditWriter(NewAuditLogger(io.Discard).With("component", "proxy")) != nil {
		t.Error("a derived logger was taken for NewAuditLogger's")
	}
	if auditWriter(slog.New(slog.NewJSONHandler(io.Discard, nil))) != nil {
		t.Error("a plain JSON logger was taken for NewAuditLogger's")
	}
}
