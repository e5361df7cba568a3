package audit

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	lineIssue  = `{"time":"2026-11-28T10:00:00.123Z","level":"INFO","msg":"lease","lease_id":"L1","sub":"alice","client_id":"demo-app","scope":"api:read","jkt":"K1","event":"lease.issue","rule":"sandbox","expires_in":300}`
	lineDeny   = `{"time":"2026-11-28T10:05:00Z","level":"WARN","msg":"lease denied","event":"lease.deny","op":"lease","error":"invalid_scope","client_id":"demo-app","sub":"bob"}`
	lineProxy  = `{"time":"2026-11-28T10:10:00Z","level":"INFO","msg":"proxy decision","decision":"allow","status":200,"method":"GET","path":"/v1/x","client":"demo-app","sub":"alice","lease":"L1"}`
	lineDevice = `{"time":"2026-11-28T11:00:00Z","level":"INFO","msg":"device.approve","event":"device.approve","client_id":"other","sub":"alice"}`
)

func TestParse(t *testing.T) {
	tests := []struct {
		name                            string
		in                              string
		wantErr                         bool
		event, client, sub, decision, f string
	}{
		{name: "lease issue", in: lineIssue, event: "lease.issue", client: "demo-app", sub: "alice", f: "300"},
		{name: "proxy decision", in: lineProxy, event: ProxyEvent, client: "demo-app", sub: "alice", decision: "allow"},
		{name: "trailing CRLF", in: lineDeny + "\r\n", event: "lease.deny", client: "demo-app", sub: "bob"},
		{name: "empty", in: "", wantErr: true},
		{name: "not json", in: "keyless dev: data in .keyless", wantErr: true},
		{name: "array", in: `[1,2]`, wantErr: true},
		{name: "no time", in: `{"msg":"x"}`, wantErr: true},
		{name: "bad time", in: `{"time":"yesterday"}`, wantErr: true},
		{name: "time not a string", in: `{"time":1}`, wantErr: true},
		{name: "two objects", in: `{"time":"2026-11-28T10:00:00Z"}{"time":"2026-11-28T10:00:00Z"}`, wantErr: true},
		{name: "truncated", in: lineIssue[:40], wantErr: true},
		{name: "too long", in: `{"time":"2026-11-28T10:00:00Z","x":"` + strings.Repeat("a", MaxLineBytes) + `"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Parse([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if l.Event != tt.event || l.Client != tt.client || l.Sub != tt.sub || l.Decision != tt.decision {
				t.Errorf("Parse = event %q client %q sub %q decision %q, want %q %q %q %q",
					l.Event, l.Client, l.Sub, l.Decision, tt.event, tt.client, tt.sub, tt.decision)
			}
			if tt.f != "" && l.Field("expires_in") != tt.f {
				t.Errorf("Field(expires_in) = %q, want %q", l.Field("expires_in"), tt.f)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	lines := map[string]Line{}
	for name, s := range map[string]string{"issue": lineIssue, "deny": lineDeny, "proxy": lineProxy, "device": lineDevice} {
		l, err := Parse([]byte(s))
		if err != nil {
			t.Fatal(name, err)
		}
		lines[name] = l
	}
	tests := []struct {
		name string
		f    Filter
		want string // names of the matching lines, in issue, deny, proxy, device order
	}{
		{"zero matches all", Filter{}, "issue deny proxy device"},
		{"client folds client and client_id", Filter{Client: "demo-app"}, "issue deny proxy"},
		{"sub", Filter{Sub: "alice"}, "issue proxy device"},
		{"event exact", Filter{Event: "lease.issue"}, "issue"},
		{"event prefix dot", Filter{Event: "lease."}, "issue deny"},
		{"event prefix star", Filter{Event: "lease.*"}, "issue deny"},
		{"proxy event", Filter{Event: ProxyEvent}, "proxy"},
		{"event not a prefix without dot", Filter{Event: "lease"}, ""},
		{"decision", Filter{Decision: "allow"}, "proxy"},
		{"since inclusive", Filter{Since: at("2026-11-28T10:05:00Z")}, "deny proxy device"},
		{"until exclusive", Filter{Until: at("2026-11-28T10:05:00Z")}, "issue"},
		{"window and sub", Filter{Since: at("2026-11-28T10:01:00Z"), Until: at("2026-11-28T12:00:00Z"), Sub: "alice"}, "proxy device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, n := range []string{"issue", "deny", "proxy", "device"} {
				if tt.f.Match(lines[n]) {
					got = append(got, n)
				}
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("matches = %q, want %q", g, tt.want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "1h", want: now.Add(-time.Hour)},
		{in: "90s", want: now.Add(-90 * time.Second)},
		{in: "7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: "2026-11-28T10:00:00Z", want: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)},
		{in: "2026-11-28T10:00:00+01:00", want: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)},
		{in: "", wantErr: true},
		{in: "-1h", wantErr: true},
		{in: "xd", wantErr: true},
		{in: "yesterday", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTime(tt.in, now)
			if (err != nil) != tt.wantErr || (err == nil && !got.Equal(tt.want)) {
				t.Errorf("ParseTime(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestScanSkipsMalformed(t *testing.T) {
	in := strings.Join([]string{lineIssue, "garbage", "", lineDeny, `{"time":"x"}`,
		`{"time":"2026-11-28T10:00:00Z","x":"` + strings.Repeat("a", 2*MaxLineBytes) + `"}`, lineProxy}, "\n") // no final newline
	var events []string
	bad, err := Scan(strings.NewReader(in), func(l Line) bool { events = append(events, l.Event); return true })
	if err != nil || bad != 3 {
		t.Errorf("Scan: malformed %d, err %v; want 3, nil", bad, err)
	}
	if g := strings.Join(events, " "); g != "lease.issue lease.deny proxy.decision" {
		t.Errorf("events = %q", g)
	}
	// fn returning false stops the scan.
	n := 0
	Scan(strings.NewReader(in), func(Line) bool { n++; return false })
	if n != 1 {
		t.Errorf("stop after first: %d calls", n)
	}
}

func TestRing(t *testing.T) {
	tests := []struct {
		n, add int
		want   string
	}{
		{n: 3, add: 0, want: ""},
		{n: 3, add: 2, want: "0 1"},
		{n: 3, add: 3, want: "0 1 2"},
		{n: 3, add: 7, want: "4 5 6"},
		{n: 0, add: 5, want: ""},
	}
	for _, tt := range tests {
		r := NewRing(tt.n)
		for i := range tt.add {
			r.Add(Line{Msg: string(rune('0' + i))})
		}
		var got []string
		for _, l := range r.Lines() {
			got = append(got, l.Msg)
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("Ring(%d) after %d = %q, want %q", tt.n, tt.add, g, tt.want)
		}
	}
}

func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(lineIssue+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan string, 10)
	bad := make(chan struct{}, 10)
	done := make(chan error, 1)
	fi, _ := os.Stat(path)
	go func() {
		done <- Follow(ctx, path, fi.Size(), 5*time.Millisecond, func(l Line) { got <- l.Event }, func() { bad <- struct{}{} })
	}()
	next := func(want string) {
		t.Helper()
		select {
		case e := <-got:
			if e != want {
				t.Errorf("followed %q, want %q", e, want)
			}
		case <-ctx.Done():
			t.Fatalf("no line; want %q", want)
		}
	}
	appendTo := func(s string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	// A line written in two parts is read once, whole.
	appendTo(lineDeny[:30])
	appendTo(lineDeny[30:] + "\nnot json\n")
	next("lease.deny")
	select {
	case <-bad:
	case <-ctx.Done():
		t.Fatal("malformed line not reported")
	}
	// Rotation: a new file at the path is read from its start.
	os.Rename(path, path+".1")
	os.WriteFile(path, []byte(lineProxy+"\n"), 0o600)
	next(ProxyEvent)
	// Truncation.
	os.WriteFile(path, []byte(lineDevice+"\n"), 0o600)
	next("device.approve")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Follow = %v", err)
	}
	if len(got) != 0 {
		t.Errorf("extra lines: %d", len(got))
	}
}

// FuzzParse: no input panics, and a line that parses keeps its fields
// through a JSON round trip.
func FuzzParse(f *testing.F) {
	for _, s := range []string{lineIssue, lineDeny, lineProxy, lineDevice, "", "{}", `{"time":"2026-11-28T10:00:00Z","client":1}`, "\x00{"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Parse(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(l.Fields)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		l2, err := Parse(out)
		if err != nil {
			t.Fatalf("round trip of %q: %v", b, err)
		}
		if l2.Event != l.Event || l2.Client != l.Client || l2.Sub != l.Sub || !l2.Time.Equal(l.Time) {
			t.Fatalf("round trip changed %+v to %+v", l, l2)
		}
	})
}
