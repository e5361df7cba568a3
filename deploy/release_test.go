package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRelease runs what `make release` runs for two of its platforms
// (linux/amd64, darwin/arm64): the files are named by version and
// platform, SHA256SUMS checks with sha256sum -c, the Linux binary reports
// the VERSION file's version, and the Darwin one is a 64-bit arm Mach-O.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles keyless twice")
	}
	root := repoRoot(t)
	v, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(string(v))
	dist := t.TempDir()
	runCmd(t, root, []string{"DIST=" + dist}, "bash", ".ci/release", version, "testrev", "linux/amd64", "darwin/arm64")
	linux := filepath.Join(dist, "keyless-"+version+"-linux-amd64")
	darwin := filepath.Join(dist, "keyless-"+version+"-darwin-arm64")
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{linux, darwin} {
		if !strings.Contains(string(sums), "  "+filepath.Base(f)+"\n") {
			t.Errorf("SHA256SUMS lacks %s:\n%s", filepath.Base(f), sums)
		}
	}
	runCmd(t, dist, nil, "sha256sum", "-c", "SHA256SUMS")
	if out, err := exec.Command(linux, "version").Output(); err != nil || strings.TrimSpace(string(out)) != "keyless "+version+" (testrev)" {
		t.Errorf("keyless version = %q %v, want %q", out, err, "keyless "+version+" (testrev)")
	}
	b, err := os.ReadFile(darwin)
	if err != nil {
		t.Fatal(err)
	}
	// Mach-O 64-bit magic (little endian) and CPU type ARM64 (0x0100000c).
	if !bytes.HasPrefix(b, []byte{0xcf, 0xfa, 0xed, 0xfe, 0x0c, 0x00, 0x00, 0x01}) {
		t.Errorf("%s is not an arm64 Mach-O: % x", darwin, b[:8])
	}
}
