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
		stdout, stderr, err := run(c, "--help")
		if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 || !strings.Contains(stdout, "Usage: keyless "+c) || stderr != "" {
			t.Errorf("%s --help: err=%v stdout=%q stderr=%q", c, err, stdout, stderr)
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

// A phone cannot open 127.0.0.1: with --public-url the device flow's
// verification_uri (which the component turns into the QR code) and the
// banner name that URL, while the issuer keeps listening where it was told
// (here loopback).
func TestDevPublicURL(t *testing.T) {
	const public = "http://192.0.2.10:8787"
	info, _, _ := startDev(t, filepath.Join(t.TempDir(), "data"), "--public-url", public+"/")
	if !strings.HasPrefix(info.IssuerURL, "http://127.0.0.1:") {
		t.Fatalf("issuer URL %q, want the loopback listen URL", info.IssuerURL)
	}
	m := deviceAuthorize(t, info.IssuerURL)
	if got := m["verification_uri"]; got != public+"/device" {
		t.Errorf("verification_uri = %v, want %s/device", got, public)
	}
	if got, _ := m["verification_uri_complete"].(string); got != public+"/device?user_code="+m["user_code"].(string) {
		t.Errorf("verification_uri_complete = %v", got)
	}
	if !strings.Contains(info.banner, "Phone sign-in: "+public+"/device") {
		t.Errorf("banner does not name the phone's URL:\n%s", info.banner)
	}
	// The banner's QR code opens the phone's URL, never the loopback one.
	if qr := terminalQR(public + "/device"); qr == "" || !strings.Contains(info.banner, qr) {
		t.Errorf("banner has no QR code of %s/device:\n%s", public, info.banner)
	}
	if strings.Contains(info.banner, terminalQR(info.IssuerURL+"/device")) {
		t.Error("banner's QR code opens the loopback URL")
	}

	if _, _, err := run("dev", "--data", t.TempDir(), "--assets", t.TempDir()); exitCode(err) != 2 || !strings.Contains(err.Error(), "make wasm") {
		t.Errorf("--assets with no component: %v", err)
	}
	for _, bad := range []string{"ftp://x.example.test", "/device", "http://192.0.2.10:8787/x?y", "http://u@192.0.2.10"} {
		_, _, err := run("dev", "--data", t.TempDir(), "--public-url", bad)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), "--public-url") {
			t.Errorf("--public-url %q: %v", bad, err)
		}
	}
}

func TestPublicListenAddr(t *testing.T) {
	tests := []struct{ public, want string }{
		// A LAN address: every interface, so this machine's browser still
		// reaches 127.0.0.1 and the phone the LAN address.
		{"http://192.168.1.20:8787", ":8787"},
		{"http://192.168.1.20", ":80"},
		{"http://laptop.local:8787", ":8787"},
		{"http://[fd00::5]:8787", ":8787"},
		// TLS ends in front of keyless (a tunnel, a reverse proxy): keep the default.
		{"https://keyless.example.test", ""},
		{"http://127.0.0.1:9000", ""},
	}
	for _, tt := range tests {
		if got := publicListenAddr(tt.public); got != tt.want {
			t.Errorf("publicListenAddr(%q) = %q, want %q", tt.public, got, tt.want)
		}
	}
}

// The banner says what runs: the config's upstreams (here one without url,
// so the built-in echo API), the component's URL or that it is missing,
// the users, the poll interval; --app serves the page and nothing else of
// its directory.
func TestDevBannerAndApp(t *testing.T) {
	tmp := t.TempDir()
	app := filepath.Join(tmp, "myapp")
	if _, errOut, err := runNewCLI("app", "myapp", "--dir", app); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	info, _, _ := startDev(t, filepath.Join(tmp, "data"), "-c", filepath.Join(app, "keyless.yaml"),
		"--app", app, "--app-addr", "127.0.0.1:0", "--assets", "")
	for _, want := range []string{
		"Upstream api: built-in echo API",
		"Poll interval: 1s",
		"1 client myapp; 1 user alice",
		"WARNING: no web component to serve: " + info.IssuerURL + "/keyless/keyless.js answers 404",
		"App:           " + info.AppURL + "/",
		"--as alice",
	} {
		if !strings.Contains(info.banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, info.banner)
		}
	}
	for path, want := range map[string]int{"/": 200, "/app.js": 200, "/keyless.yaml": 404, "/README.md": 404, "/.keyless/admin.token": 404} {
		resp, err := http.Get(info.AppURL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/" && !strings.Contains(string(body), `client-id="myapp"`) {
			t.Errorf("GET / is not the app's page: %s", body)
		}
	}
	// The route to the echo API works through the proxy: an anonymous
	// call is refused by the proxy, not by a missing upstream.
	resp, err := http.Get(info.ProxyURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET proxy / = %d, want 401", resp.StatusCode)
	}
}

func TestDevSandboxBanner(t *testing.T) {
	assets := t.TempDir()
	for _, f := range []string{"keyless.js", "keyless.wasm", "wasm_exec.js"} {
		if err := os.WriteFile(filepath.Join(assets, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	info, _, _ := startDev(t, filepath.Join(t.TempDir(), "data"), "--assets", assets)
	for _, want := range []string{
		"Component:     " + info.IssuerURL + "/keyless/keyless.js",
		"Upstream:      built-in echo API",
		"Poll interval: 1s",
	} {
		if !strings.Contains(info.banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, info.banner)
		}
	}
	if strings.Contains(info.banner, "WARNING") {
		t.Errorf("banner warns with assets:\n%s", info.banner)
	}
	if got := deviceAuthorize(t, info.IssuerURL)["interval"]; got != float64(1) {
		t.Errorf("sandbox interval = %v, want 1", got)
	}
}

// An unknown client is explained in the issuer's log (which client_id,
// where to register it); the caller gets invalid_client with fixed text.
func TestDevUnknownClientLogged(t *testing.T) {
	info, logs, _ := startDev(t, filepath.Join(t.TempDir(), "data"))
	resp, err := http.PostForm(info.IssuerURL+"/device_authorization", url.Values{"client_id": {"my-typo-app"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"invalid_client"`) || strings.Contains(string(body), "my-typo-app") {
		t.Errorf("unknown client: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{`"msg":"client.unknown"`, `"client_id":"my-typo-app"`, "clients:"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}
