package main

import (
	"context"
	"errors"
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/federation"
	"github.com/keyless-dev/keyless/sidecar/lease"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

type revokeTestVerifier struct{}

func (revokeTestVerifier) Verify(context.Context, string) (*token.Claims, error) {
	return nil, token.ErrInvalidToken
}

func TestRevokeCommand(t *testing.T) {
	pol, err := policy.Load(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := token.NewKeySet(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	revs := &memstore.Revocations{}
	fv, err := federation.New(federation.Config{Name: "corp", Issuer: "https://idp.example.test", Audience: federation.StringList{"keyless"}}, federation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	corp := lease.Issuer{Issuer: "https://idp.example.test", Name: "corp", Federation: fv}
	svc, err := lease.New(lease.Options{
		Policy: func() *policy.Policy { return pol }, Minter: &token.Minter{Keys: keys, Issuer: "https://auth.example.test"},
		Audience: "https://api.example.test", BaseURL: "https://auth.example.test",
		Issuers:     []lease.Issuer{{Issuer: "https://auth.example.test", Verifier: revokeTestVerifier{}}, corp},
		Revocations: revs, Replay: &memstore.Replay{}, AdminToken: "tok-123",
	})
	if err != nil {
		t.Fatal(err)
	}
	admin := httptest.NewServer(svc.AdminHandler())
	defer admin.Close()
	dir := t.TempDir()
	for name, v := range map[string]string{adminAddrFile: admin.URL, adminTokenFile: "tok-123"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for flagName, kind := range map[string]store.Kind{"--sub": store.KindSub, "--client": store.KindClient, "--jkt": store.KindJKT} {
		out, errOut, err := runPolicyCLI("revoke", flagName, "v-"+string(kind), "--data", dir)
		if err != nil || !strings.Contains(out, "revoked "+string(kind)+" v-"+string(kind)+": 0 active leases ended") || !strings.Contains(out, "new sign-ins work") {
			t.Fatalf("revoke %s: err=%v out=%q stderr=%q", flagName, err, out, errOut)
		}
		if ok, _ := revs.AnyRevoked(context.Background(), store.Revocation{Kind: kind, Value: "v-" + string(kind)}); !ok {
			t.Errorf("%s: not revoked", flagName)
		}
	}
	// --issuer: the external issuer's subject, not the local one.
	if out, errOut, err := runPolicyCLI("revoke", "--sub", "alice", "--issuer", "corp", "--data", dir); err != nil || !strings.Contains(out, "revoked sub alice (corp)") {
		t.Fatalf("revoke --issuer: err=%v out=%q stderr=%q", err, out, errOut)
	}
	if ok, _ := revs.AnyRevoked(context.Background(), store.Revocation{Kind: store.KindSub, Value: store.SubjectValue("corp", "alice")}); !ok {
		t.Error("--issuer corp --sub alice: corp's alice not revoked")
	}
	if ok, _ := revs.AnyRevoked(context.Background(), store.Revocation{Kind: store.KindSub, Value: "alice"}); ok {
		t.Error("--issuer corp --sub alice revoked the local alice")
	}
	if _, _, err := runPolicyCLI("revoke", "--sub", "alice", "--issuer", "nope", "--data", dir); err == nil {
		t.Error("--issuer naming no issuer: no error")
	}
	if _, _, err := runPolicyCLI("revoke", "--client", "a", "--issuer", "corp", "--data", dir); exitCode(err) != 2 {
		t.Errorf("--issuer with --client: exit %d, want 2", exitCode(err))
	}
	// A block says until when and how to undo it; --unblock lifts it.
	out, _, err := runPolicyCLI("revoke", "--sub", "mallory", "--block", "1h", "--data", dir)
	if err != nil || !strings.Contains(out, "blocked sub mallory until") || !strings.Contains(out, "--unblock") {
		t.Errorf("--block: %v %q", err, out)
	}
	mallory := store.Revocation{Kind: store.KindSub, Value: "mallory", IssuedAt: time.Now().Add(time.Minute)}
	if ok, _ := revs.AnyRevoked(context.Background(), mallory); !ok {
		t.Error("--block does not refuse what is issued after it")
	}
	if out, _, err := runPolicyCLI("revoke", "--sub", "mallory", "--unblock", "--data", dir); err != nil || !strings.Contains(out, "unblocked sub mallory") {
		t.Errorf("--unblock: %v %q", err, out)
	}
	if ok, _ := revs.AnyRevoked(context.Background(), mallory); ok {
		t.Error("still blocked after --unblock")
	}
	// An unknown lease id: exit 1, saying so.
	if _, _, err := runPolicyCLI("revoke", "--lease", "doesnotexist", "--data", dir); exitCode(err) != 1 || !strings.Contains(err.Error(), "no active lease has this id") {
		t.Errorf("unknown lease: exit %d, %v", exitCode(err), err)
	}
	// Wrong token: the server refuses and the command fails.
	os.WriteFile(filepath.Join(dir, adminTokenFile), []byte("wrong\n"), 0o600)
	if _, _, err := runPolicyCLI("revoke", "--sub", "x", "--data", dir); err == nil || exitCode(err) != 1 {
		t.Errorf("wrong admin token: err=%v", err)
	}
	for _, args := range [][]string{{"revoke"}, {"revoke", "--sub", "a", "--jkt", "b"}, {"revoke", "--sub", "a", "extra"},
		{"revoke", "--lease", "a", "--block", "1h"}, {"revoke", "--sub", "a", "--block", "1h", "--unblock"}, {"revoke", "--list", "--sub", "a"}} {
		if _, _, err := runPolicyCLI(args...); exitCode(err) != 2 {
			t.Errorf("%v: exit %d, want 2", args, exitCode(err))
		}
	}
	if errOut, _, err := runPolicyCLI("revoke", "--help"); !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "Usage: keyless revoke") {
		t.Errorf("--help: %v %q", err, errOut)
	}
	if _, _, err := runPolicyCLI("revoke", "--sub", "a", "--data", t.TempDir()); err == nil {
		t.Error("no running keyless: no error")
	}
}
