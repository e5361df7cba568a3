package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/lease"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// devLease vends a lease from a running keyless dev for sub, as the
// browser does after the device flow: a login token bound to key,
// exchanged at POST /v1/lease with a proof by the same key.
func devLease(t *testing.T, info devInfo, key dpop.Signer, sub string) string {
	t.Helper()
	login, _, err := info.server.Minter().Issue(context.Background(), token.Spec{
		Subject: sub, Audience: []string{info.IssuerURL}, ClientID: "demo-app", Scope: []string{"api:read", "api:write"},
		JKT: key.PublicJWK().Thumbprint(), TTL: 5 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	proof, err := dpop.NewProof(key, http.MethodPost, info.IssuerURL+lease.PathLease, dpop.ProofOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"subject_token": login, "client_id": "demo-app"})
	req, _ := http.NewRequest(http.MethodPost, info.IssuerURL+lease.PathLease, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("DPoP", proof)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := decodeJSON(resp.Body, &m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("lease: %d %v %v", resp.StatusCode, m, err)
	}
	// The audit file names the lease, never a token. Audit lines are
	// written by a queue, so the line may land just after the response.
	want := `"lease_id":"` + m["lease_id"].(string) + `"`
	var b []byte
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(string(b), want) && time.Now().Before(deadline); {
		b, _ = os.ReadFile(filepath.Join(info.DataDir, auditLogFile))
		if !strings.Contains(string(b), want) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, secret := range []string{login, m["access_token"].(string), m["renewal_token"].(string), proof} {
		if strings.Contains(string(b), secret) {
			t.Errorf("audit.log contains a token or proof")
		}
	}
	if !strings.Contains(string(b), want) {
		t.Errorf("audit.log lacks the lease.issue line")
	}
	return m["lease_id"].(string)
}

func TestLeasesCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	info, _, _ := startDev(t, dir)
	if out, _, err := run("leases", "--data", dir); err != nil || !strings.Contains(out, "no active leases") {
		t.Fatalf("empty: %v %q", err, out)
	}
	ka, kb := newKey(t), newKey(t)
	la, lb := devLease(t, info, ka, "alice"), devLease(t, info, kb, "bob")

	out, errOut, err := run("leases", "--data", dir)
	if err != nil {
		t.Fatalf("leases: %v %s", err, errOut)
	}
	for _, want := range []string{"LEASE", la, lb, "alice", "bob", "demo-app", "api:read", ka.PublicJWK().Thumbprint(), "2 active lease(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("leases output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = run("leases", "--data", dir, "--sub", "alice", "--format", "json")
	var ls []lease.Active
	if err != nil || json.Unmarshal([]byte(out), &ls) != nil || len(ls) != 1 {
		t.Fatalf("--sub alice --format json: %v %q", err, out)
	}
	if a := ls[0]; a.LeaseID != la || a.ClientID != "demo-app" || a.JKT != ka.PublicJWK().Thumbprint() ||
		!a.ExpiresAt.After(a.IssuedAt) || a.RenewableUntil.Before(a.ExpiresAt) {
		t.Errorf("alice's lease = %+v", a)
	}
	if out, _, _ := run("leases", "--data", dir, "--client", "other-app", "--format", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("--client other-app = %q, want []", out)
	}
	// Revoked leases are no longer active.
	if _, _, err := run("revoke", "--lease", la, "--data", dir); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := run("leases", "--data", dir); strings.Contains(out, la) || !strings.Contains(out, lb) {
		t.Errorf("after revoking %s:\n%s", la, out)
	}
	// keyless revoke --list shows it, and a block, first.
	if out, _, err := run("revoke", "--sub", "mallory", "--block", "1h", "--data", dir); err != nil || !strings.Contains(out, "blocked sub mallory") {
		t.Fatalf("--block: %v %q", err, out)
	}
	out, _, err = run("revoke", "--list", "--data", dir)
	if err != nil || !strings.Contains(out, "lease  "+la) || !strings.HasPrefix(out, "BLOCKED  sub    mallory until ") {
		t.Errorf("revoke --list: %v\n%s", err, out)
	}
	// The admin API refuses a wrong token, and the command says so.
	tok := filepath.Join(dir, adminTokenFile)
	good, _ := os.ReadFile(tok)
	os.WriteFile(tok, []byte("wrong\n"), 0o600)
	if _, _, err := run("leases", "--data", dir); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong admin token: %v", err)
	}
	os.WriteFile(tok, good, 0o600)
	for _, args := range [][]string{{"leases", "extra"}, {"leases", "--format", "xml"}} {
		if _, _, err := run(args...); exitCode(err) != 2 {
			t.Errorf("%v: exit %d", args, exitCode(err))
		}
	}
	if errOut, _, err := run("leases", "--help"); exitCode(err) != 0 || !strings.Contains(errOut, "Usage: keyless leases") {
		t.Errorf("--help: %v %q", err, errOut)
	}
}
