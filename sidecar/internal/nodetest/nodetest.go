// Package nodetest runs Node.js scripts from Go tests, for interop with
// third-party JavaScript clients (npm dpop, jose, oauth4webapi) installed at
// the repository root by `npm ci`.
//
// A missing Node or node_modules fails the test when CI is set (CI must
// never silently skip interop) and skips it otherwise.
package nodetest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Root returns the repository root (the directory holding go.mod).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("nodetest: go.mod not found above the test directory")
		}
		dir = parent
	}
}

// Require checks that node and the named npm packages are installed.
func Require(t testing.TB, packages ...string) {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("nodetest: %s missing; .ci/run must install it (npm ci)", what)
		}
		t.Skipf("nodetest: %s missing; run `npm ci` at the repository root", what)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("node")
	}
	root := Root(t)
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join(root, "node_modules", p, "package.json")); err != nil {
			missing("npm package " + p)
		}
	}
}

// Run runs `node script args...` with stdin, bounded by a minute, and
// returns stdout. A non-zero exit fails the test with stderr.
func Run(t testing.TB, script string, stdin []byte, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstderr:\n%s", script, err, errb.String())
	}
	return out.Bytes()
}
