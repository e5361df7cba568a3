package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"

	"github.com/keyless-dev/keyless/sidecar/scan"
)

func init() {
	register("scan", "find long-lived secrets in files, bundles (zip, tar.gz, JS, source maps) and git history", runScan)
}

const scanUsage = `scan [--format text|json|sarif] [--fail-on SEVERITY] [--git] PATH...

Scans files, directories and exported bundles (.zip, .tar, .tar.gz/.tgz,
nested archives, minified JS, source maps, HTML, .env) for long-lived
secrets, with gitleaks's rules plus JWT lifetimes, private JWKs and
connection strings. Keyless leases (short-lived DPoP-bound at+jwt) are
recognised and not reported. With --git, each PATH is a git repository and
every blob in its history is scanned instead of its working tree.

Exit status: 0 when no finding is at or above --fail-on, 1 when one is,
2 for a usage error or a scan that could not run.`

// runScan is `keyless scan`.
func runScan(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("scan", scanUsage, stderr)
	format := fs.String("format", "text", "output: text, json or sarif (SARIF 2.1.0, for code scanning)")
	failOn := fs.String("fail-on", "high", "exit 1 when a finding is at or above: info, low, medium, high, critical, or none")
	history := fs.Bool("git", false, "scan each PATH's git history (all refs) instead of its files")
	var lim scan.Limits
	fs.IntVar(&lim.MaxDepth, "max-depth", scan.DefaultMaxDepth, "archive nesting depth refused beyond this")
	fs.Int64Var(&lim.MaxFileSize, "max-file-size", scan.DefaultMaxFileSize, "bytes of one file or archive entry scanned; the rest is skipped and reported")
	fs.Int64Var(&lim.MaxRatio, "max-ratio", scan.DefaultMaxRatio, "compression ratio above which an archive entry is refused as a bomb")
	fs.Int64Var(&lim.MaxTotal, "max-total", scan.DefaultMaxTotal, "bytes one input may expand to across its nested archives")
	fs.IntVar(&lim.MaxEntries, "max-entries", scan.DefaultMaxEntries, "members one zip archive may list; more is refused as a bomb")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	usage := func(format string, a ...any) error {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("scan: "+format, a...)}
	}
	if fs.NArg() == 0 {
		return usage("give at least one PATH")
	}
	switch *format {
	case "text", "json", "sarif":
	default:
		return usage("--format must be text, json or sarif, not %q", *format)
	}
	threshold, failNever := scan.Severity(0), *failOn == "none"
	if !failNever {
		var err error
		if threshold, err = scan.ParseSeverity(*failOn); err != nil {
			return usage("--fail-on: %v", err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s, err := scan.New(scan.Options{Limits: lim})
	if err != nil {
		return err
	}
	var rep *scan.Report
	if *history {
		rep = &scan.Report{}
		for _, repo := range fs.Args() {
			r, err := s.ScanGit(ctx, repo)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			merge(rep, r)
		}
	} else if rep, err = s.ScanPaths(ctx, fs.Args()); err != nil {
		return &exitError{code: 2, err: err}
	}

	switch *format {
	case "json":
		err = scan.WriteJSON(stdout, rep)
	case "sarif":
		err = scan.WriteSARIF(stdout, rep, scan.Tool{
			Name: "keyless", Version: buildVersion(), InformationURI: "https://github.com/keyless-dev/keyless",
		})
	default:
		err = scan.WriteText(stdout, rep)
	}
	if err != nil {
		return err
	}
	if *format != "text" {
		// Machine output goes to a file or a pipe; say on stderr what a
		// safety limit kept from being scanned, so CI logs show it.
		for _, sk := range rep.Skipped {
			if sk.Refused {
				fmt.Fprintf(stderr, "keyless scan: %s: %s\n", sk.Path, sk.Reason)
			}
		}
	}
	if top, ok := rep.Max(); ok && !failNever && top >= threshold {
		n := 0
		for _, f := range rep.Findings {
			if f.Severity >= threshold {
				n++
			}
		}
		return &exitError{code: 1, err: fmt.Errorf("scan: %d finding%s at or above %s", n, map[bool]string{true: "", false: "s"}[n == 1], threshold)}
	}
	return nil
}

// merge appends one repository's report to another's.
func merge(into, r *scan.Report) {
	into.Findings = append(into.Findings, r.Findings...)
	into.Skipped = append(into.Skipped, r.Skipped...)
	into.Files += r.Files
	into.Bytes += r.Bytes
	into.Leases += r.Leases
}

// buildVersion is the module version the binary was built from, as
// `keyless version` prints it.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
