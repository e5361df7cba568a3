package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnits runs `systemd-analyze verify` on the units (any warning
// fails: an unknown or misspelt hardening key is ignored by systemd, so it
// must be caught here) and `systemd-analyze security --offline` with an
// exposure threshold of 2.0. ExecStart is pointed at a real keyless
// binary, since verify checks that the command exists.
func TestSystemdUnits(t *testing.T) {
	sa := need(t, "systemd-analyze", "apt-get install systemd")
	root := repoRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "keyless")
	runCmd(t, root, nil, "go", "build", "-o", bin, "./sidecar/cmd/keyless")
	units := map[string]string{"keyless-serve.service": "keyless-serve.service", "keyless-proxy@.service": "keyless-proxy@a.service"}
	var names []string
	for file, name := range units {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "systemd", file))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, want := range []string{"DynamicUser=yes", "StateDirectory=", "ProtectSystem=strict", "NoNewPrivileges=yes", "ExecStart=/usr/local/bin/keyless "} {
			if !strings.Contains(s, want) {
				t.Errorf("%s: no %q", file, want)
			}
		}
		s = strings.ReplaceAll(s, "/usr/local/bin/keyless", bin)
		if err := os.WriteFile(filepath.Join(dir, file), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Join(dir, name))
	}
	out, err := exec.Command(sa, append([]string{"verify"}, names...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, n := range names {
		out, err := exec.Command(sa, "security", "--offline=yes", "--threshold=20", n).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security %s: exposure above 2.0 (%v)\n%s", filepath.Base(n), err, out)
		}
	}
}
