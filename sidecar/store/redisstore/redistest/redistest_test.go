package redistest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recorder stands in for a test whose Start call is being checked.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func startWith(t *testing.T) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(r)
	}()
	<-done
	return r
}

// TestMissingBinary: a missing redis-server fails the test under CI and
// skips it elsewhere.
func TestMissingBinary(t *testing.T) {
	t.Setenv(EnvBinary, "/nonexistent/redis-server")
	t.Setenv("CI", "true")
	if r := startWith(t); !r.failed {
		t.Errorf("CI set, redis-server missing: failed = %v, skipped = %v; want failed", r.failed, r.skipped)
	}
	t.Setenv("CI", "")
	if r := startWith(t); !r.skipped {
		t.Errorf("CI unset, redis-server missing: failed = %v, skipped = %v; want skipped", r.failed, r.skipped)
	}
}

func TestStartKillRestart(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := command(s.Addr(), "SET k v"); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if ping(s.Addr()) == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Restart()
	if err := ping(s.Addr()); err != nil {
		t.Fatal(err)
	}
	if v, err := command(s.Addr(), "GET k"); err != nil || v != "" {
		t.Fatalf("GET k after restart = %q, %v; want empty (no persistence)", v, err)
	}
}

func TestCluster(t *testing.T) {
	s := StartCluster(t)
	info, err := command(s.Addr(), "CLUSTER INFO")
	if err != nil {
		t.Fatal(err)
	}
	if want := "cluster_state:ok"; !strings.Contains(info, want) {
		t.Fatalf("CLUSTER INFO = %q, want %s", info, want)
	}
}
