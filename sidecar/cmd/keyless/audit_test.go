package main

import (
	"context"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var auditFixture = strings.Join([]string{
	`{"time":"2026-11-28T10:00:00Z","level":"INFO","msg":"lease","event":"lease.issue","lease_id":"L1","sub":"alice","client_id":"demo-app","scope":"api:read","rule":"sandbox"}`,
	`this is not json`,
	`{"time":"2026-11-28T10:05:00Z","level":"WARN","msg":"lease denied","event":"lease.deny","error":"invalid_scope","client_id":"demo-app","sub":"bob"}`,
	`{"time":"2026-11-28T10:10:00Z","level":"INFO","msg":"proxy decision","decision":"allow","status":200,"method":"GET","path":"/v1/x","client":"demo-app","sub":"alice","lease":"L1"}`,
	`{"time":"2026-11-28T10:11:00Z","level":"INFO","msg":"proxy decision","decision":"deny","status":401,"rule":"dpop","client":"demo-app","sub":"alice\u001b[31m"}`,
	`{"time":"broken"}`,
	`{"time":"2026-11-28T11:00:00Z","level":"INFO","msg":"device.approve","event":"device.approve","client_id":"other","sub":"alice","via":"admin"}`,
}, "\n") + "\n"

func writeAuditFixture(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(p, []byte(auditFixture), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runAuditCLI(args ...string) (string, string, error) {
	out, errOut := &syncBuffer{}, &syncBuffer{}
	now := func() time.Time { return time.Date(2026, 11, 28, 11, 30, 0, 0, time.UTC) }
	err := runAudit(context.Background(), args, out, errOut, auditRun{now: now})
	return out.String(), errOut.String(), err
}

func TestAuditQuery(t *testing.T) {
	file := writeAuditFixture(t)
	tests := []struct {
		name string
		args []string
		want []string // a substring of each expected output line, in order (text: after the header)
	}{
		{"all", nil, []string{"lease.issue", "lease.deny", "allow", "deny", "device.approve"}},
		{"client", []string{"--client", "demo-app"}, []string{"lease.issue", "lease.deny", "allow", "deny"}},
		{"sub", []string{"--sub", "bob"}, []string{"lease.deny"}},
		{"event prefix", []string{"--event", "lease."}, []string{"lease.issue", "lease.deny"}},
		{"proxy decisions", []string{"--event", "proxy.decision", "--decision", "deny"}, []string{"status=401"}},
		{"since duration", []string{"--since", "1h"}, []string{"device.approve"}},
		{"since and until", []string{"--since", "2026-11-28T10:05:00Z", "--until", "2026-11-28T10:11:00Z"}, []string{"lease.deny", "allow"}},
		{"limit", []string{"--limit", "2"}, []string{"lease.issue", "lease.deny"}},
		{"json", []string{"--format", "json", "--sub", "bob"}, []string{`{"time":"2026-11-28T10:05:00Z","level":"WARN"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := runAuditCLI(append([]string{"query", "--file", file}, tt.args...)...)
			if err != nil {
				t.Fatalf("err = %v, stderr %q", err, errOut)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if !slicesContainsFormatJSON(tt.args) {
				if !strings.HasPrefix(lines[0], "TIME (UTC)") {
					t.Fatalf("no header: %q", out)
				}
				lines = lines[1:]
			}
			if len(lines) == 1 && lines[0] == "" {
				lines = nil
			}
			if len(lines) != len(tt.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tt.want), out)
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
			if !strings.Contains(errOut, "skipped 2 malformed line(s)") && !strings.Contains(strings.Join(tt.args, " "), "--limit") {
				t.Errorf("stderr = %q, want the malformed count", errOut)
			}
			if strings.Contains(out, "\x1b") {
				t.Errorf("a control character reached the terminal: %q", out)
			}
		})
	}
}

func slicesContainsFormatJSON(args []string) bool {
	return strings.Contains(strings.Join(args, " "), "--format json")
}

func TestAuditUsage(t *testing.T) {
	file := writeAuditFixture(t)
	for _, args := range [][]string{
		{},
		{"nope"},
		{"query", "--file", file, "--since", "yesterday"},
		{"query", "--file", file, "--format", "xml"},
		{"query", "--file", file, "--follow"},
		{"tail", "--file", file, "--limit", "3"},
		{"query", "--file", file, "extra"},
		{"query", "--file", file, "--decision", "maybe"},
		{"tail", "--file", file, "--decision", "Deny"},
	} {
		if _, _, err := runAuditCLI(args...); exitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, exitCode(err), err)
		}
	}
	for _, args := range [][]string{{"--help"}, {"query", "--help"}, {"tail", "--help"}} {
		if _, errOut, err := runAuditCLI(args...); !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "Usage: keyless audit") {
			t.Errorf("%v: err %v stderr %q", args, err, errOut)
		}
	}
	if _, _, err := runAuditCLI("query", "--data", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no audit log") {
		t.Errorf("missing log: %v", err)
	}
}

func TestAuditTail(t *testing.T) {
	file := writeAuditFixture(t)
	out, _, err := runAuditCLI("tail", "--file", file, "-n", "2", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 ||
		!strings.Contains(lines[0], `"decision":"deny"`) || !strings.Contains(lines[1], "device.approve") {
		t.Errorf("tail -n 2 = %q", out)
	}
	out, _, _ = runAuditCLI("tail", "--file", file, "-n", "1", "--client", "demo-app")
	if !strings.Contains(out, "deny") || strings.Count(out, "\n") != 2 {
		t.Errorf("tail -n 1 --client = %q", out)
	}
}

// lineSignal is an io.Writer that signals every write, so a test waits
// for output without polling.
type lineSignal struct {
	syncBuffer
	c chan struct{}
}

func (l *lineSignal) Write(p []byte) (int, error) {
	n, err := l.syncBuffer.Write(p)
	select {
	case l.c <- struct{}{}:
	default:
	}
	return n, err
}

func TestAuditTailFollow(t *testing.T) {
	file := writeAuditFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := &lineSignal{c: make(chan struct{}, 1)}
	errOut := &syncBuffer{}
	done := make(chan error, 1)
	following := make(chan struct{})
	go func() {
		done <- runAudit(ctx, []string{"tail", "-f", "-n", "0", "--file", file, "--sub", "carol", "--format", "json"},
			out, errOut, auditRun{poll: 5 * time.Millisecond, following: func() { close(following) }})
	}()
	select {
	case <-following:
	case err := <-done:
		t.Fatalf("tail -f returned: %v", err)
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(`{"time":"2026-11-28T12:00:00Z","event":"lease.issue","sub":"dave"}` + "\n")
	f.WriteString("garbage\n")
	want := `{"time":"2026-11-28T12:00:01Z","event":"lease.issue","sub":"carol"}`
	f.WriteString(want + "\n")
	for !strings.Contains(out.String(), want) {
		select {
		case <-out.c:
		case <-ctx.Done():
			t.Fatalf("followed line not printed: %q", out.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("tail -f: %v", err)
	}
	if strings.Contains(out.String(), "dave") {
		t.Errorf("filter ignored while following: %q", out.String())
	}
	if !strings.Contains(errOut.String(), "skipped 1 malformed") {
		t.Errorf("stderr = %q", errOut.String())
	}
}

// TestDevWritesAuditLog: keyless dev appends its audit lines to
// DATA/audit.log (0600), and keyless audit reads them.
func TestDevWritesAuditLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	info, stderrLog, stop := startDev(t, dir)
	m := deviceAuthorize(t, info.IssuerURL)
	if _, errOut, err := run("approve", m["user_code"].(string), "--as", "alice", "--data", dir); err != nil {
		t.Fatalf("approve: %v %s", err, errOut)
	}
	// The proxy's decisions go to the same file.
	resp, err := http.Get(info.ProxyURL + "/v1/things")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	stop() // closes the file
	fi, err := os.Stat(filepath.Join(dir, auditLogFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit.log: %v %v, want mode 0600", fi, err)
	}
	out, errOut, err := run("audit", "query", "--data", dir, "--event", "device.", "--client", "demo-app")
	if err != nil || errOut != "" {
		t.Fatalf("audit query: %v %q", err, errOut)
	}
	if !strings.Contains(out, "device.authorize") || !strings.Contains(out, "device.approve") || !strings.Contains(out, "alice") {
		t.Errorf("audit query = %q", out)
	}
	out, _, err = run("audit", "query", "--data", dir, "--event", "proxy.decision", "--decision", "deny", "--format", "json")
	if err != nil || !strings.Contains(out, `"status":401`) || !strings.Contains(out, `"path":"/v1/things"`) {
		t.Errorf("proxy decision: %v %q", err, out)
	}
	// Every line on stderr is in the file too.
	b, _ := os.ReadFile(filepath.Join(dir, auditLogFile))
	for _, l := range strings.Split(strings.TrimSpace(stderrLog.String()), "\n") {
		if strings.HasPrefix(l, "{") && !strings.Contains(string(b), l) {
			t.Errorf("stderr line missing from audit.log: %s", l)
		}
	}
	// A restart appends.
	before := len(b)
	info, _, stop = startDev(t, dir)
	deviceAuthorize(t, info.IssuerURL)
	stop()
	b, _ = os.ReadFile(filepath.Join(dir, auditLogFile))
	if len(b) <= before || !strings.HasPrefix(string(b), string(b[:before])) {
		t.Errorf("audit.log was not appended to (%d -> %d bytes)", before, len(b))
	}
}
