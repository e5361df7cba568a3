package main

// keyless audit tail|query: read the audit log (DATA/audit.log) that keyless
// dev and serve write, filtered by time, app, subject, event and decision.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/keyless-dev/keyless/sidecar/audit"
)

func init() {
	register("audit", "read the audit log: keyless audit tail [-n N] [--follow] | query --since 1h --client APP --sub USER", runAuditCommand)
}

const auditUsage = `audit tail [-n N] [--follow] [filters] | audit query [--since 1h|RFC3339] [--until ...] [filters] [--limit N]

Filters: --client APP --sub USER --event EVENT (lease. for every lease event) --decision allow|deny|error
Source:  --data DIR (reads DIR/audit.log) or --file FILE; --format text|json`

func runAuditCommand(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runAudit(ctx, args, stdout, stderr, auditRun{})
}

// auditRun holds what tests change: the clock and how often --follow
// looks for new lines.
type auditRun struct {
	now  func() time.Time
	poll time.Duration
	// following, when set, is called when tail --follow has read the
	// file and starts following it.
	following func()
}

// auditFlags are the flags tail and query share.
type auditFlags struct {
	data, file, format           string
	since, until                 string
	client, sub, event, decision string
}

func (f *auditFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.data, "data", defaultDataDir, "data directory whose audit.log to read")
	fs.StringVar(&f.file, "file", "", "audit log file to read instead of DATA/audit.log (e.g. keyless proxy --audit-file)")
	fs.StringVar(&f.format, "format", "text", "output: text (columns) or json (the lines as written)")
	fs.StringVar(&f.since, "since", "", "only lines at or after this time: a duration back from now (90s, 1h, 7d) or RFC 3339")
	fs.StringVar(&f.until, "until", "", "only lines before this time (same forms as --since)")
	fs.StringVar(&f.client, "client", "", "only this app (client_id, or the proxy's client)")
	fs.StringVar(&f.sub, "sub", "", "only this subject")
	fs.StringVar(&f.event, "event", "", "only this event (lease.issue, proxy.decision, ...); a name ending in . or .* is a prefix")
	fs.StringVar(&f.decision, "decision", "", "only proxy decisions with this outcome: allow, deny or error")
}

func (f *auditFlags) filter(now time.Time) (audit.Filter, error) {
	af := audit.Filter{Client: f.client, Sub: f.sub, Event: f.event, Decision: f.decision}
	var err error
	if f.since != "" {
		if af.Since, err = audit.ParseTime(f.since, now); err != nil {
			return af, err
		}
	}
	if f.until != "" {
		if af.Until, err = audit.ParseTime(f.until, now); err != nil {
			return af, err
		}
	}
	if f.format != "text" && f.format != "json" {
		return af, fmt.Errorf("--format must be text or json, not %q", f.format)
	}
	// A decision no line can have would print nothing and look like "no
	// matches": refuse it instead.
	switch f.decision {
	case "", "allow", "deny", "error":
	default:
		return af, fmt.Errorf("--decision must be allow, deny or error, not %q", f.decision)
	}
	return af, nil
}

func (f *auditFlags) path() string {
	if f.file != "" {
		return f.file
	}
	return filepath.Join(f.data, auditLogFile)
}

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer, rc auditRun) error {
	if rc.now == nil {
		rc.now = time.Now
	}
	if len(args) == 0 || (args[0] != "tail" && args[0] != "query") {
		fs := newFlags("audit", auditUsage, stderr)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		fs.Usage()
		return &exitError{code: 2, err: errors.New("audit: give tail or query")}
	}
	sub := args[0]
	fs := newFlags("audit "+sub, auditUsage, stderr)
	var f auditFlags
	f.register(fs)
	n := fs.IntP("lines", "n", 20, "tail: how many of the last matching lines to print")
	follow := fs.BoolP("follow", "f", false, "tail: keep printing lines as they are appended, until interrupted")
	limit := fs.Int("limit", 0, "query: print at most this many lines, the first that match (0: all)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("audit %s: takes no arguments", sub)}
	}
	af, err := f.filter(rc.now())
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("audit %s: %w", sub, err)}
	}
	if sub == "query" && (fs.Changed("lines") || *follow) || sub == "tail" && fs.Changed("limit") {
		return &exitError{code: 2, err: fmt.Errorf("audit %s: -n and --follow are tail's, --limit is query's", sub)}
	}
	path := f.path()
	file, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("audit: no audit log at %s (keyless dev and serve write DATA/%s; give --data DIR or --file FILE)", path, auditLogFile)
	}
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer file.Close()
	print := func(l audit.Line) { printAuditLine(stdout, l, f.format) }
	if f.format == "text" {
		fmt.Fprintln(stdout, auditHeader)
	}

	var bad int
	switch sub {
	case "query":
		printed := 0
		bad, err = audit.Scan(file, func(l audit.Line) bool {
			if af.Match(l) {
				print(l)
				printed++
			}
			return *limit <= 0 || printed < *limit
		})
	case "tail":
		// Read up to the size seen now; --follow goes on from there.
		fi, serr := file.Stat()
		if serr != nil {
			return serr
		}
		ring := audit.NewRing(*n)
		bad, err = audit.Scan(io.LimitReader(file, fi.Size()), func(l audit.Line) bool {
			if af.Match(l) {
				ring.Add(l)
			}
			return true
		})
		for _, l := range ring.Lines() {
			print(l)
		}
		if err == nil && *follow {
			reportMalformed(stderr, bad, path)
			bad = 0
			if rc.following != nil {
				rc.following()
			}
			err = audit.Follow(ctx, path, fi.Size(), rc.poll, func(l audit.Line) {
				if af.Match(l) {
					print(l)
				}
			}, func() { bad++ })
		}
	}
	reportMalformed(stderr, bad, path)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

func reportMalformed(stderr io.Writer, n int, path string) {
	if n > 0 {
		fmt.Fprintf(stderr, "keyless audit: skipped %d malformed line(s) in %s\n", n, path)
	}
}

// auditHeader names the text columns.
var auditHeader = fmt.Sprintf(auditCols, "TIME (UTC)", "LEVEL", "EVENT", "CLIENT", "SUB", "DETAILS")

const auditCols = "%-20s %-5s %-18s %-16s %-16s %s"

// auditDetails are the fields shown in the text DETAILS column, in this
// order, when the line has them.
var auditDetails = []string{
	"decision", "status", "method", "path", "route", "rule", "op", "error", "reason",
	"lease", "lease_id", "scope", "requested_scope", "expires_in", "clamped", "jkt", "kind", "value", "by", "via", "grant", "kid",
}

func printAuditLine(w io.Writer, l audit.Line, format string) {
	if format == "json" {
		fmt.Fprintf(w, "%s\n", l.Raw)
		return
	}
	var d []string
	for _, k := range auditDetails {
		if v := l.Field(k); v != "" {
			if strings.ContainsAny(v, " \t") {
				v = fmt.Sprintf("%q", v)
			}
			d = append(d, k+"="+v)
		}
	}
	ev := l.Event
	if ev == "" {
		ev = l.Msg
	}
	fmt.Fprintf(w, auditCols+"\n", l.Time.UTC().Format("2006-01-02T15:04:05Z"), l.Level,
		cell(ev), cell(dash(l.Client)), cell(dash(l.Sub)), sanitize(strings.Join(d, " ")))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cell makes a value safe for one column of a terminal: no control
// characters (an audit line can carry a client_id or subject an attacker
// chose), no spaces.
func cell(s string) string {
	return strings.ReplaceAll(sanitize(s), " ", "_")
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}
