package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProxyCommandCheck(t *testing.T) {
	t.Setenv("ORDERS_API_KEY", "test-secret")
	var out, errb bytes.Buffer
	if err := Run([]string{"proxy", "--config", "../../proxy/testdata/proxy.yaml", "--check"}, &out, &errb); err != nil {
		t.Fatalf("check: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "ok (6 routes)") {
		t.Errorf("output %q", out.String())
	}
	if err := Run([]string{"proxy"}, &out, &errb); exitCode(err) != 2 {
		t.Errorf("no --config: exit %d, want 2", exitCode(err))
	}
	errb.Reset()
	if err := Run([]string{"proxy", "--help"}, &out, &errb); exitCode(err) != 0 || !strings.Contains(errb.String(), "--config") ||
		!strings.Contains(errb.String(), "--feed-secret-file") || !strings.Contains(errb.String(), "--store") {
		t.Errorf("--help: exit %d, usage %q", exitCode(err), errb.String())
	}
}

// TestProxyRefusesWithoutRevocations: a proxy with neither a shared store
// nor the issuer's revocation feed would never learn of a revocation; it
// refuses to start and says what to configure.
func TestProxyRefusesWithoutRevocations(t *testing.T) {
	t.Setenv("ORDERS_API_KEY", "test-secret")
	t.Setenv(storeEnv, "")
	var out, errb bytes.Buffer
	err := Run([]string{"proxy", "--config", "../../proxy/testdata/proxy.yaml"}, &out, &errb)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "no way to learn revocations") ||
		!strings.Contains(err.Error(), "--store") || !strings.Contains(err.Error(), "--feed-secret-file") {
		t.Fatalf("exit %d: %v", exitCode(err), err)
	}
	// A secret file others can read is refused too.
	f := filepath.Join(t.TempDir(), "feed.secret")
	os.WriteFile(f, []byte("x\n"), 0o644)
	err = Run([]string{"proxy", "--config", "../../proxy/testdata/proxy.yaml", "--feed-secret-file", f}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable secret: %v", err)
	}
}
