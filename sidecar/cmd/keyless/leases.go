package main

// keyless leases: list the active leases of the running keyless process
// through its admin API (loopback, admin token), to see who holds what
// before revoking it with keyless revoke.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyless-dev/keyless/sidecar/lease"
)

func init() {
	register("leases", "list active leases (keyless leases [--client APP] [--sub USER] [--format json])", runLeases)
}

func runLeases(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("leases", "leases [--client APP] [--sub USER] [--format text|json] [--data DIR]", stderr)
	client := fs.String("client", "", "only this app's leases")
	sub := fs.String("sub", "", "only this subject's leases")
	format := fs.String("format", "text", "output: text (columns) or json")
	dataDir := fs.String("data", defaultDataDir, "data directory of the running keyless dev or serve")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || (*format != "text" && *format != "json") {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("leases: takes no arguments; --format is text or json")}
	}
	c, err := newAdminClient(*dataDir)
	if err != nil {
		return err
	}
	q := url.Values{}
	if *client != "" {
		q.Set("client", *client)
	}
	if *sub != "" {
		q.Set("sub", *sub)
	}
	path := lease.PathAdminList
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m, err := c.call(ctx, http.MethodGet, path, "")
	if err != nil {
		return fmt.Errorf("leases: %w", err)
	}
	var ls []lease.Active
	b, _ := json.Marshal(m["leases"])
	if err := json.Unmarshal(b, &ls); err != nil {
		return fmt.Errorf("leases: unexpected answer from the admin API: %w", err)
	}
	if *format == "json" {
		if ls == nil {
			ls = []lease.Active{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ls)
	}
	printLeases(stdout, ls)
	return nil
}

func printLeases(w io.Writer, ls []lease.Active) {
	if len(ls) == 0 {
		fmt.Fprintln(w, "no active leases")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LEASE\tSUB\tCLIENT\tSCOPES\tKEY (jkt)\tISSUED\tEXPIRES\tRENEWABLE UNTIL")
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02T15:04:05Z")
	}
	for _, l := range ls {
		scopes := strings.Join(l.Scopes, ",")
		if l.Preview {
			scopes += " (preview)"
		}
		sub := cell(l.Subject)
		if l.IdP != "" {
			// An external issuer's user (docs/identity-providers.md#namespace).
			sub += " (" + cell(l.IdP) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(l.LeaseID), sub, cell(l.ClientID),
			sanitize(scopes), cell(l.JKT), ts(l.IssuedAt), ts(l.ExpiresAt), ts(l.RenewableUntil))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d active lease(s); revoke with keyless revoke --lease ID | --sub USER [--issuer NAME] | --client APP | --jkt KEY\n", len(ls))
}
