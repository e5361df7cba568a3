package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startDev runs `keyless dev` in-process on free loopback ports and stops
// it when the test ends (or when the returned stop is called).
func startDev(t *testing.T, dataDir string, extra ...string) (devInfo, *syncBuffer, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	ready := make(chan devInfo, 1)
	done := make(chan error, 1)
	args := append([]string{"--data", dataDir, "--issuer-addr", "127.0.0.1:0", "--proxy-addr", "127.0.0.1:0"}, extra...)
	go func() { done <- runDev(ctx, args, out, errOut, func(i devInfo) { ready <- i }) }()
	var info devInfo
	select {
	case info = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("keyless dev exited: %v\n%s", err, errOut.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("keyless dev did not start")
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("keyless dev did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return info, errOut, stop
}

func run(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := Run(args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func deviceAuthorize(t *testing.T, issuer string) map[string]any {
	t.Helper()
	resp, err := http.PostForm(issuer+"/device_authorization", url.Values{"client_id": {"demo-app"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := decodeJSON(resp.Body, &m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("device authorization: %d %v", resp.StatusCode, err)
	}
	return m
}

func TestHelp(t *testing.T) {
	for _, c := range []string{"dev", "serve", "approve", "deny", "keys"} {
		_, stderr, err := run(c, "--help")
		if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 || !strings.Contains(stderr, "Usage: keyless "+c) {
			t.Errorf("%s --help: err=%v stderr=%q", c, err, stderr)
		}
	}
	if _, _, err := run("approve", "X", "--nope"); exitCode(err) != 2 {
		t.Errorf("unknown flag: exit %d", exitCode(err))
	}
}

func TestDevSandboxApproveDenyKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	info, audit, stop := startDev(t, dir)
	if !strings.HasPrefix(info.IssuerURL, "http://127.0.0.1:") || strings.HasSuffix(info.IssuerURL, ":0") || info.Password == "" {
		t.Fatalf("info = %+v", info)
	}
	for _, f := range []string{adminTokenFile, sandboxPassFile, adminAddrFile, "keyless.db"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi.Mode(), err)
		}
	}
	// The data dir is locked while dev runs.
	if _, _, err := run("dev", "--data", dir, "--issuer-addr", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second dev on the same data dir: %v", err)
	}

	d := deviceAuthorize(t, info.IssuerURL)
	uc := d["user_code"].(string)
	// Flags after the positional argument, lowercase code.
	out, _, err := run("approve", strings.ToLower(uc), "--as", "alice", "--data", dir)
	if err != nil || !strings.Contains(out, "approved") {
		t.Fatalf("approve: %q %v", out, err)
	}
	if _, _, err := run("approve", "--data", dir, uc, "--as", "alice"); err == nil || !strings.Contains(err.Error(), "already") {
		t.Errorf("approve twice: %v", err)
	}
	if _, _, err := run("approve", uc, "--data", dir); exitCode(err) != 2 {
		t.Errorf("approve without --as: exit %d", exitCode(err))
	}
	if _, _, err := run("approve", "BBBB-BBBB", "--as", "alice", "--data", dir); err == nil {
		t.Error("approve unknown code succeeded")
	}
	if _, _, err := run("approve", deviceAuthorize(t, info.IssuerURL)["user_code"].(string), "--as", "mallory", "--data", dir); err == nil {
		t.Error("approve as unknown user succeeded")
	}
	d2 := deviceAuthorize(t, info.IssuerURL)
	if out, _, err := run("deny", d2["user_code"].(string), "--data", dir); err != nil || !strings.Contains(out, "denied") {
		t.Errorf("deny: %q %v", out, err)
	}

	out, _, err = run("keys", "list", "--data", dir)
	if err != nil || strings.Count(out, "active=") != 1 {
		t.Fatalf("keys list: %q %v", out, err)
	}
	firstKID := strings.Fields(out)[0]
	if out, _, err = run("keys", "rotate", "--data", dir); err != nil || !strings.Contains(out, "rotated") {
		t.Fatalf("keys rotate (running): %q %v", out, err)
	}
	resp, err := http.Get(info.IssuerURL + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct{ Keys []map[string]any }
	_ = decodeJSON(resp.Body, &jwks)
	resp.Body.Close()
	if len(jwks.Keys) != 2 {
		t.Errorf("JWKS after rotate has %d keys, want 2", len(jwks.Keys))
	}
	if a := audit.String(); !strings.Contains(a, `"event":"device.approve"`) || strings.Contains(a, info.Password) {
		t.Errorf("audit: %s", a)
	}

	// Stopped: approve says so; keys rotate works on the file.
	stop()
	if _, err := os.Stat(filepath.Join(dir, adminAddrFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin URL file left behind: %v", err)
	}
	if _, _, err := run("approve", uc, "--as", "alice", "--data", dir); !errors.Is(err, errNotRunning) {
		t.Errorf("approve with dev stopped: %v", err)
	}
	if out, _, err = run("keys", "rotate", "--data", dir); err != nil || !strings.Contains(out, "rotated") {
		t.Fatalf("keys rotate (stopped): %q %v", out, err)
	}

	// Restart: same sandbox password, keys carried over (3 now).
	info2, _, _ := startDev(t, dir)
	if info2.Password != info.Password {
		t.Error("sandbox password changed across restart")
	}
	out, _, _ = run("keys", "list", "--data", dir)
	if strings.Count(out, "active=") != 3 || !strings.Contains(out, firstKID) {
		t.Errorf("keys after restart: %q", out)
	}
}

func TestDevWithConfigAndServe(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "keyless.yaml")
	// A well-formed bcrypt hash; no one signs in during this test.
	y := "clients:\n  - id: app\n    scopes: [s]\n    default_scopes: [s]\nusers:\n  - name: bob\n    password_hash: \"$2a$04$0sQ6v1ZSPnmG2X1yVDqEauxXCy2Kw8n4Z9b4k9tq.z7iS2m0zW5Ie\"\n"
	if err := os.WriteFile(cfgFile, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	info, _, _ := startDev(t, filepath.Join(dir, "d"), "--config", cfgFile)
	if info.Password != "" {
		t.Error("password printed with --config")
	}
	if _, err := os.Stat(filepath.Join(dir, "d", sandboxPassFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("sandbox password written with --config")
	}
	if _, _, err := run("serve", "--data", filepath.Join(dir, "s")); exitCode(err) != 2 {
		t.Errorf("serve without --config: exit %d", exitCode(err))
	}
	if _, _, err := run("serve", "--config", cfgFile, "--data", filepath.Join(dir, "s")); err == nil || !strings.Contains(err.Error(), "issuer.url") {
		t.Errorf("serve without issuer.url: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("clients: [{id: x}]\nusers: [{name: y, password_hash: plain}]\n"), 0o600)
	_, _, err := run("dev", "--config", bad, "--data", filepath.Join(dir, "b"), "--issuer-addr", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "scope") || !strings.Contains(err.Error(), "bcrypt") {
		t.Errorf("bad config: %v", err)
	}
}

// The proxy of `keyless dev` forwards only requests with a lease signed by
// the embedded issuer, bound by DPoP; the rest never reach the upstream.
func TestDevProxy(t *testing.T) {
	var hits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("hello " + r.Header.Get("X-Keyless-Subject")))
	}))
	defer up.Close()
	dir := filepath.Join(t.TempDir(), "data")
	info, _, _ := startDev(t, dir, "--upstream", up.URL)
	if info.ProxyURL == "" {
		t.Fatal("proxy not started")
	}
	resp, err := http.Get(info.ProxyURL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || hits.Load() != 0 {
		t.Fatalf("no credentials: %d, hits %d", resp.StatusCode, hits.Load())
	}
	// A lease as the vending service will mint it, signed with the
	// issuer's keys read from the data dir's JWKS.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := dpop.NewECDSASigner(k)
	lease, _, err := info.server.Minter().Issue(context.Background(), token.Spec{
		Subject: "alice", Audience: []string{info.ProxyURL}, ClientID: "demo-app", Scope: []string{"api:read"},
		JKT: signer.PublicJWK().Thumbprint(), LeaseID: "lease-1", TTL: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	proof, _ := dpop.NewProof(signer, "GET", info.ProxyURL+"/x", dpop.ProofOptions{AccessToken: lease})
	req, _ := http.NewRequest("GET", info.ProxyURL+"/x", nil)
	req.Header.Set("Authorization", "DPoP "+lease)
	req.Header.Set("DPoP", proof)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || hits.Load() != 1 {
		t.Fatalf("with a lease: %d %s, hits %d", resp.StatusCode, b, hits.Load())
	}
}
