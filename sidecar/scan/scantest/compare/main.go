// Command compare prints keyless scan's throughput next to gitleaks's CLI
// on the same generated micro-app tree:
//
//	go run ./sidecar/scan/scantest/compare -mb 200
//
// gitleaks's CLI is built from the module this repository already
// requires for the library (go build github.com/zricethezav/gitleaks/v8),
// so both sides run the same rules at the same version; -gitleaks names
// another binary (e.g. `go tool -n gitleaks` after go get -tool). Both
// scan plain files: the tree has no archives, which gitleaks's dir
// command does not open by default.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/keyless-dev/keyless/sidecar/scan"
	"github.com/keyless-dev/keyless/sidecar/scan/scantest"
)

func main() {
	mb := flag.Int("mb", 200, "size of the generated tree in MiB")
	dir := flag.String("dir", "", "where to write the tree (default: a temporary directory, removed after)")
	gitleaks := flag.String("gitleaks", "", "gitleaks binary (default: built from the required module)")
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
	if gitleaks == "" {
		bin, err := os.MkdirTemp("", "gitleaks-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(bin)
		gitleaks = filepath.Join(bin, "gitleaks")
		if out, err := exec.Command("go", "build", "-o", gitleaks, "github.com/zricethezav/gitleaks/v8").CombinedOutput(); err != nil {
			return fmt.Errorf("building gitleaks: %v: %s", err, out)
		}
	}
	cmd := exec.Command(gitleaks, "dir", dir, "--no-banner", "--exit-code", "0",
		"--report-format", "json", "--report-path", report, "--log-level", "error")
	cmd.Stderr = os.Stderr
	t0 = time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("gitleaks: %w", err)
	}
	gd := time.Since(t0)
	b, err := os.ReadFile(report)
	if err != nil {
		return err
	}
	var found []json.RawMessage
	if err := json.Unmarshal(b, &found); err != nil {
		return fmt.Errorf("gitleaks report: %w", err)
	}
	row("gitleaks dir (CLI)", tree.Bytes, gd, len(found))
	fmt.Printf("\nkeyless is %.2fx as fast as gitleaks on this tree\n", gd.Seconds()/kd.Seconds())
	return nil
}

func row(name string, n int64, d time.Duration, findings int) {
	f := ""
	if findings >= 0 {
		f = fmt.Sprintf("  %d findings", findings)
	}
	fmt.Printf("%-24s %8.2f MB/s  %8v%s\n", name, float64(n)/1e6/d.Seconds(), d.Round(time.Millisecond), f)
}
