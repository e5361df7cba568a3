// Command compare prints keyless scan's throughput next to gitleaks's CLI
// on the same generated micro-app tree:
//
//	go run ./sidecar/scan/scantest/compare -mb 200
//
// gitleaks runs as `go tool gitleaks dir` when the module declares the
// tool (go get -tool github.com/zricethezav/gitleaks/v8@v8.30.1), or as
// the binary named by -gitleaks. Both scan plain files only: gitleaks's
// dir command does not open archives by default.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/scan"
	"github.com/keyless-dev/keyless/sidecar/scan/scantest"
)

func main() {
	mb := flag.Int("mb", 200, "size of the generated tree in MiB")
	dir := flag.String("dir", "", "where to write the tree (default: a temporary directory, removed after)")
	gitleaks := flag.String("gitleaks", "", "gitleaks binary (default: go tool gitleaks)")
	flag.Parse()
	if err := run(*mb, *dir, *gitleaks); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(mb int, dir, gitleaks string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "keyless-scan-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	t0 := time.Now()
	tree, err := scantest.Write(dir, int64(mb)<<20, 1)
	if err != nil {
		return err
	}
	fmt.Printf("tree: %d files, %.1f MB, %d planted secrets (written in %v) on %d CPUs\n\n",
		tree.Files, float64(tree.Bytes)/1e6, tree.Secrets, time.Since(t0).Round(time.Millisecond), runtime.NumCPU())

	s, err := scan.New(scan.Options{})
	if err != nil {
		return err
	}
	t0 = time.Now()
	rep, err := s.ScanPaths(context.Background(), []string{dir})
	if err != nil {
		return err
	}
	kd := time.Since(t0)
	row("keyless scan (library)", tree.Bytes, kd, len(rep.Findings))

	// The report goes to a temporary file, never os.DevNull: running as
	// root, gitleaks replaced /dev/null with a regular file.
	report := filepath.Join(os.TempDir(), fmt.Sprintf("keyless-gitleaks-%d.json", os.Getpid()))
	defer os.Remove(report)
	args := []string{"dir", dir, "--no-banner", "--exit-code", "0", "--report-format", "json", "--report-path", report, "--log-level", "error"}
	var cmd *exec.Cmd
	if gitleaks != "" {
		cmd = exec.Command(gitleaks, args...)
	} else {
		cmd = exec.Command("go", append([]string{"tool", "gitleaks"}, args...)...)
		// Build first so the timing below is the scan alone.
		if out, err := exec.Command("go", "tool", "-n", "gitleaks").CombinedOutput(); err != nil {
			return fmt.Errorf("go tool gitleaks: %v: %s (declare it: go get -tool github.com/zricethezav/gitleaks/v8@v8.30.1, or pass -gitleaks)", err, strings.TrimSpace(string(out)))
		} else {
			cmd = exec.Command(strings.TrimSpace(string(out)), args...)
		}
	}
	cmd.Stderr = os.Stderr
	t0 = time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("gitleaks: %w", err)
	}
	row("gitleaks "+"dir (CLI)", tree.Bytes, time.Since(t0), -1)
	return nil
}

func row(name string, n int64, d time.Duration, findings int) {
	f := ""
	if findings >= 0 {
		f = fmt.Sprintf("  %d findings", findings)
	}
	fmt.Printf("%-24s %8.2f MB/s  %8v%s\n", name, float64(n)/1e6/d.Seconds(), d.Round(time.Millisecond), f)
}
