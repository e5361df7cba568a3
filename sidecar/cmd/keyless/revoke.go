package main

// keyless revoke: revoke leases by lease id, subject, app or key
// thumbprint through the admin API of the running keyless process; block
// and unblock a subject, app or key; list what is revoked. Semantics in
// docs/revocation.md.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/keyless-dev/keyless/sidecar/lease"
)

func init() {
	register("revoke", "revoke leases (keyless revoke --lease ID | --sub SUBJECT [--issuer NAME] | --client APP | --jkt THUMBPRINT [--block 1h | --unblock] | --list)", runRevoke)
}

const revokeUsage = "revoke (--lease ID | --sub SUBJECT [--issuer NAME] | --client APP | --jkt THUMBPRINT) [--block DURATION | --unblock] [--data DIR]\n       keyless revoke --list [--data DIR]"

func runRevoke(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("revoke", revokeUsage, stderr)
	kinds := []struct{ flag, kind, help string }{
		{"lease", "lease", "a lease id: exactly that lease and its renewals"},
		{"sub", "sub", "a subject: every lease issued to that user up to now (new sign-ins work)"},
		{"client", "client", "an app's client_id: every lease issued to that app up to now"},
		{"jkt", "jkt", "a DPoP key thumbprint: every lease bound to that key up to now"},
	}
	vals := make([]*string, len(kinds))
	for i, k := range kinds {
		vals[i] = fs.String(k.flag, "", k.help)
	}
	issuer := fs.String("issuer", "", "with --sub: the external issuer's name (vending.issuers[].name); without it, keyless's own users")
	block := fs.Duration("block", 0, "with --sub/--client/--jkt: also refuse new sign-ins and leases for this long (e.g. 1h)")
	unblock := fs.Bool("unblock", false, "with --sub/--client/--jkt: lift a block")
	list := fs.Bool("list", false, "list the revocations and blocks in force")
	dataDir := fs.String("data", defaultDataDir, "data directory of the running keyless dev or serve")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	kind, value := "", ""
	n := 0
	for i, k := range kinds {
		if *vals[i] != "" {
			kind, value = k.kind, *vals[i]
			n++
		}
	}
	switch {
	case *list && (n != 0 || *block != 0 || *unblock || fs.NArg() != 0):
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("revoke: --list takes no other flag")}
	case !*list && (n != 1 || fs.NArg() != 0):
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("revoke: give exactly one of --lease, --sub, --client, --jkt (or --list)")}
	case *block < 0 || (*block != 0 && *unblock):
		return &exitError{code: 2, err: fmt.Errorf("revoke: --block takes a positive duration and excludes --unblock")}
	case kind == "lease" && (*block != 0 || *unblock):
		return &exitError{code: 2, err: fmt.Errorf("revoke: --block and --unblock apply to --sub, --client or --jkt")}
	}
	if *issuer != "" && kind != "sub" {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("revoke: --issuer goes only with --sub")}
	}
	c, err := newAdminClient(*dataDir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if *list {
		return listRevocations(ctx, c, stdout)
	}
	req := map[string]any{"kind": kind, "value": value}
	if *block != 0 {
		req["block"] = block.String()
	}
	if *unblock {
		req["unblock"] = true
	}
	if *issuer != "" {
		req["issuer"] = *issuer
	}
	body, _ := json.Marshal(req)
	out, err := c.call(ctx, http.MethodPost, lease.PathAdmin, string(body))
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	var res lease.AdminResult
	b, _ := json.Marshal(out)
	_ = json.Unmarshal(b, &res)
	fmt.Fprintln(stdout, describeRevoke(&res))
	return nil
}

// describeRevoke says what a revocation ended, in one line.
func describeRevoke(r *lease.AdminResult) string {
	if r.Issuer != "" {
		r.Value += " (" + r.Issuer + ")"
	}
	leases := fmt.Sprintf("%d active lease", r.Ended)
	if r.Ended != 1 {
		leases += "s"
	}
	switch {
	case r.Unblocked:
		return fmt.Sprintf("unblocked %s %s: new sign-ins work again (what was issued before stays revoked)", r.Kind, r.Value)
	case !r.BlockedUntil.IsZero():
		return fmt.Sprintf("blocked %s %s until %s: %s ended; new sign-ins are refused until then (undo: keyless revoke --%s %s --unblock)",
			r.Kind, r.Value, r.BlockedUntil.UTC().Format(time.RFC3339), leases, r.Kind, r.Value)
	case r.Kind == "lease":
		return fmt.Sprintf("revoked lease %s: %s ended", r.Value, leases)
	default:
		return fmt.Sprintf("revoked %s %s: %s ended (everything issued up to %s); new sign-ins work",
			r.Kind, r.Value, leases, r.Cutoff.UTC().Format(time.RFC3339))
	}
}

func listRevocations(ctx context.Context, c *adminClient, stdout io.Writer) error {
	out, err := c.call(ctx, http.MethodGet, lease.PathAdminRevocations, "")
	if err != nil {
		return fmt.Errorf("revoke --list: %w", err)
	}
	var res struct {
		Revocations []lease.RevocationInfo `json:"revocations"`
	}
	b, _ := json.Marshal(out)
	_ = json.Unmarshal(b, &res)
	if len(res.Revocations) == 0 {
		fmt.Fprintln(stdout, "no revocations in force")
		return nil
	}
	for _, r := range res.Revocations {
		switch {
		case r.Blocked:
			fmt.Fprintf(stdout, "BLOCKED  %-6s %s until %s\n", r.Kind, r.Value, r.Cutoff.Format(time.RFC3339))
		case !r.Cutoff.IsZero():
			fmt.Fprintf(stdout, "revoked  %-6s %s: issued up to %s\n", r.Kind, r.Value, r.Cutoff.Format(time.RFC3339))
		default:
			fmt.Fprintf(stdout, "revoked  %-6s %s (remembered until %s)\n", r.Kind, r.Value, r.Until.Format(time.RFC3339))
		}
	}
	return nil
}
