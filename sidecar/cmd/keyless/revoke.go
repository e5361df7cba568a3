package main

// keyless revoke: revoke leases by lease id, subject, app or key
// thumbprint through the admin API of the running keyless process.

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
	register("revoke", "revoke leases (keyless revoke --lease ID | --sub SUBJECT [--issuer NAME] | --client APP | --jkt THUMBPRINT)", runRevoke)
}

const revokeUsage = "revoke (--lease ID | --sub SUBJECT [--issuer NAME] | --client APP | --jkt THUMBPRINT) [--data DIR]"

func runRevoke(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("revoke", revokeUsage, stderr)
	kinds := []struct{ flag, kind, help string }{
		{"lease", "lease", "a lease id: that lease and its renewals"},
		{"sub", "sub", "a subject: every lease of that user"},
		{"client", "client", "an app's client_id: every lease of that app"},
		{"jkt", "jkt", "a DPoP key thumbprint: every lease bound to that key"},
	}
	vals := make([]*string, len(kinds))
	for i, k := range kinds {
		vals[i] = fs.String(k.flag, "", k.help)
	}
	issuer := fs.String("issuer", "", "with --sub: the external issuer's name (vending.issuers[].name); without it, keyless's own users")
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
	if n != 1 || fs.NArg() != 0 {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("revoke: give exactly one of --lease, --sub, --client, --jkt")}
	}
	if *issuer != "" && kind != "sub" {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("revoke: --issuer goes only with --sub")}
	}
	c, err := newAdminClient(*dataDir)
	if err != nil {
		return err
	}
	req := map[string]string{"kind": kind, "value": value}
	if *issuer != "" {
		req["issuer"] = *issuer
		value = *issuer + " " + value
	}
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := c.call(ctx, http.MethodPost, lease.PathAdmin, string(body)); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	fmt.Fprintf(stdout, "revoked %s %s\n", kind, value)
	return nil
}
