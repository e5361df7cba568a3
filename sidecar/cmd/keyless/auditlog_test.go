package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("closed terminal") }

func TestOpenAudit(t *testing.T) {
	public := os.FileMode(0o644)
	tests := []struct {
		name     string
		existing *os.FileMode // a file already there, with this mode
		stderrOK bool
	}{
		{name: "new file", stderrOK: true},
		{name: "appends to an existing file and makes it private", existing: &public, stderrOK: true},
		{name: "a failing stderr does not stop the file", stderrOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", auditLogFile)
			if tt.existing != nil {
				os.MkdirAll(filepath.Dir(path), 0o700)
				if err := os.WriteFile(path, []byte(`{"old":1}`+"\n"), *tt.existing); err != nil {
					t.Fatal(err)
				}
				os.Chmod(path, *tt.existing)
			}
			var stderr syncBuffer
			var w interface{ Write([]byte) (int, error) } = &stderr
			if !tt.stderrOK {
				w = failWriter{}
			}
			log, closeFn, err := openAudit(w, path)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("lease", "event", "lease.issue", "sub", "alice")
			if err := closeFn(); err != nil {
				t.Fatalf("close: %v", err)
			}
			log.Info("late", "event", "after.close") // must not panic or reach the file
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(path)
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
			// A failing stderr is reported in the file (audit.write_failed),
			// when the report lands before the file is closed.
			var lines []string
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if !strings.Contains(l, `"msg":"audit.write_failed"`) {
					lines = append(lines, l)
				}
			}
			want := 1
			if tt.existing != nil {
				want = 2
				if lines[0] != `{"old":1}` {
					t.Errorf("existing content lost: %q", b)
				}
			}
			if len(lines) != want || !strings.Contains(lines[want-1], `"event":"lease.issue"`) {
				t.Errorf("file = %q", b)
			}
			if tt.stderrOK && (!strings.Contains(stderr.String(), `"event":"lease.issue"`) || !strings.Contains(stderr.String(), "after.close")) {
				t.Errorf("stderr = %q", stderr.String())
			}
		})
	}
	// No path: stderr only.
	var stderr syncBuffer
	log, closeFn, err := openAudit(&stderr, "")
	if err != nil || closeFn() != nil {
		t.Fatal(err)
	}
	log.Info("x", "event", "e")
	if !strings.Contains(stderr.String(), `"event":"e"`) {
		t.Errorf("stderr = %q", stderr.String())
	}
}
