package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// repoRoot walks up from the test's directory to the directory holding
// go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		dir = filepath.Dir(dir)
	}
	t.Fatal("go.mod not found above the test directory")
	return ""
}

// needNode skips (or, under CI, fails) when node or the npm test
// dependencies are missing.
func needNode(t *testing.T, root string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(root, "node_modules", "oauth4webapi", "package.json"))
	}
	if err == nil {
		_, err = os.Stat(filepath.Join(root, "node_modules", "jose", "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node and node_modules/{oauth4webapi,jose} are required under CI (run npm ci): %v", err)
		}
		t.Skipf("node or node_modules missing (run npm ci): %v", err)
	}
	return node
}

// TestOAuth4WebAPIInterop: a real third-party client (npm oauth4webapi,
// with its DPoP support) runs discovery, device authorization, the DPoP
// token request, refresh and revocation against a running `keyless dev`;
// approval goes through `keyless approve`.
func TestOAuth4WebAPIInterop(t *testing.T) {
	root := repoRoot(t)
	node := needNode(t, root)
	dir := filepath.Join(t.TempDir(), "data")
	info, audit, _ := startDev(t, dir)

	cmd := exec.Command(node, filepath.Join(root, "sidecar", "authserver", "testdata", "oauth4webapi_flow.mjs"))
	cmd.Env = append(os.Environ(), "ISSUER="+info.IssuerURL)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()

	sc := bufio.NewScanner(stdout)
	approved, done := false, false
	for sc.Scan() {
		var msg struct {
			UserCode string `json:"user_code"`
			Done     bool   `json:"done"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			t.Errorf("node said %q", sc.Text())
			continue
		}
		if msg.UserCode != "" && !approved {
			out, _, err := run("approve", msg.UserCode, "--as", "alice", "--data", dir)
			if err != nil {
				t.Errorf("keyless approve: %v", err)
			}
			t.Logf("%s", strings.TrimSpace(out))
			approved = true
			_, _ = stdin.Write([]byte("approved\n"))
		}
		done = done || msg.Done
	}
	err := cmd.Wait()
	if err != nil || !approved || !done {
		t.Fatalf("node interop failed: %v (approved=%v done=%v)\n%s\naudit:\n%s", err, approved, done, stderr.String(), audit.String())
	}
	t.Logf("%s", stderr.String())
}
