package main

// keyless doctor: check a configuration and the deployment it describes
// (issuer, JWKS, clocks, the proxy's upstreams over their TLS, Redis) and
// say in plain words what to fix. The checks are in doctor_checks.go.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func init() {
	register("doctor", "check a config and the running deployment, and say what to fix (keyless doctor --config FILE)", runDoctorCommand)
}

const doctorUsage = "doctor --config FILE [--data DIR] [--proxy-config FILE] [--store redis://HOST:PORT | --feed-secret-file FILE] [--issuer URL]"

// Check outcomes, worst last.
const (
	statusOK   = "OK"
	statusSkip = "SKIP"
	statusWarn = "WARN"
	statusFail = "FAIL"
)

// checkResult is one line of the report.
type checkResult struct {
	status string
	name   string // what was checked, one word or two
	msg    string // what was found
	fix    string // what to do about it; empty when nothing
}

// doctor holds the inputs of the checks and collects their results.
type doctor struct {
	cfgPath, dataDir, proxyPath, store string
	// feedSecret is --feed-secret-file: the proxies' copy of the issuer's
	// revocation feed secret.
	feedSecret string
	// issuer stands in for an empty issuer.url (--issuer).
	issuer string
	// client makes the HTTP calls; its Timeout bounds each.
	client *http.Client
	// now is the clock the issuer's Date header is compared with.
	now     func() time.Time
	results []checkResult
}

func (d *doctor) add(status, name, msg, fix string) {
	d.results = append(d.results, checkResult{status: status, name: name, msg: msg, fix: fix})
}

func runDoctorCommand(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runDoctor(ctx, args, stdout, stderr, nil)
}

// runDoctor is keyless doctor; now, when set, replaces the clock (tests).
func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fs := newFlags("doctor", doctorUsage, stderr)
	d := &doctor{now: now}
	fs.StringVarP(&d.cfgPath, "config", "c", "", "keyless.yaml of the issuer and vending service (required)")
	fs.StringVar(&d.dataDir, "data", "", "data directory of the issuer: file modes and whether its admin API answers")
	fs.StringVar(&d.proxyPath, "proxy-config", "", "a keyless proxy config: its upstreams are called over their TLS settings")
	fs.StringVar(&d.issuer, "issuer", "", "the issuer's URL when the config leaves issuer.url empty (keyless dev: http://127.0.0.1:8787)")
	fs.StringVar(&d.feedSecret, "feed-secret-file", "", "without --store: the proxies' copy of the issuer's DATA/"+feedSecretFile+", checked against its revocation feed")
	fs.StringVar(&d.store, "store", "", "the shared Redis store, e.g. redis://127.0.0.1:6379/0 (default $"+storeEnv+")")
	timeout := fs.Duration("timeout", 5*time.Second, "time allowed for each network check")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if d.cfgPath == "" || fs.NArg() != 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("doctor: --config FILE is required and takes no arguments")}
	}
	d.store = storeURL(d.store)
	if d.now == nil {
		d.now = time.Now
	}
	d.client = &http.Client{Timeout: *timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	d.run(ctx)

	fails, warns := 0, 0
	for _, r := range d.results {
		line := fmt.Sprintf("%-4s  %-14s %s", r.status, r.name, sanitize(r.msg))
		if r.fix != "" {
			line += " Fix: " + r.fix
		}
		fmt.Fprintln(stdout, line)
		switch r.status {
		case statusFail:
			fails++
		case statusWarn:
			warns++
		}
	}
	fmt.Fprintf(stdout, "\n%d check(s): %d failed, %d warning(s)\n", len(d.results), fails, warns)
	if fails > 0 {
		return &exitError{code: 1, err: fmt.Errorf("doctor: %d check(s) failed", fails)}
	}
	return nil
}
