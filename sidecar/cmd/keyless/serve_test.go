package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
)

// testCA issues loopback certificates for the serve TLS tests.
type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyless test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &testCA{key: k, cert: c, pool: pool}
}

// issue writes a certificate for 127.0.0.1 named cn, and its key, to
// dir/tls.crt and dir/tls.key.
func (ca *testCA) issue(t *testing.T, dir, cn string, serial int64) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(k)
	// Key first, then certificate, each by rename: how cert managers
	// replace files.
	for _, f := range []struct {
		name string
		pem  *pem.Block
	}{{"tls.key", &pem.Block{Type: "PRIVATE KEY", Bytes: kb}}, {"tls.crt", &pem.Block{Type: "CERTIFICATE", Bytes: der}}} {
		tmp := filepath.Join(dir, f.name+".tmp")
		if err := os.WriteFile(tmp, pem.EncodeToMemory(f.pem), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
			t.Fatal(err)
		}
	}
}

// serveConfig is a small deployment config: one client, alice with the
// password "where2eat-demo" (its bcrypt hash, as in demo/keyless.yaml).
const serveConfig = `issuer:
  url: %s
clients:
  - id: demo-app
    scopes: [read]
    default_scopes: [read]
users:
  - name: alice
    password_hash: $2a$10$0e.J//mb36sjqbIVFlT9buXSG7Qdchf733l6KlYXYxSmHcPXfeob.
`

// startServe runs `keyless serve` in-process until the test ends.
func startServe(t *testing.T, args ...string) *runningIssuer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *runningIssuer, 1)
	done := make(chan error, 1)
	errOut := &syncBuffer{}
	go func() { done <- serveMain(ctx, args, io.Discard, errOut, func(r *runningIssuer) { ready <- r }) }()
	select {
	case r := <-ready:
		t.Cleanup(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("keyless serve did not stop")
			}
		})
		return r
	case err := <-done:
		cancel()
		t.Fatalf("keyless serve exited: %v\n%s", err, errOut.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("keyless serve did not start")
	}
	return nil
}

// TLS with HTTP/2 by ALPN, the certificate replaced under the running
// server and picked up on SIGHUP, and the operations endpoints on the
// admin listener: /healthz, /readyz, /metrics counting the device flow.
func TestServeTLSHealthReadyMetrics(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	ca.issue(t, dir, "first", 2)
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "keyless.yaml")
	if err := os.WriteFile(cfg, []byte(strings.Replace(serveConfig, "%s", "https://"+addr, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	iss := startServe(t, "--config", cfg, "--data", data, "--issuer-addr", addr, "--assets", "",
		"--tls-cert", filepath.Join(dir, "tls.crt"), "--tls-key", filepath.Join(dir, "tls.key"))

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, ForceAttemptHTTP2: true, DisableKeepAlives: true}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	peer := func() (string, string) {
		resp, err := client.Get(iss.url + "/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("jwks: %d", resp.StatusCode)
		}
		return resp.Proto, resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if proto, cn := peer(); proto != "HTTP/2.0" || cn != "first" {
		t.Fatalf("first request: %s with certificate %q, want HTTP/2.0 and \"first\"", proto, cn)
	}
	// Plain HTTP on the TLS port gets no answer from the issuer.
	if resp, err := http.Get("http://" + addr + "/jwks.json"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served on the TLS port")
		}
	}

	ca.issue(t, dir, "second", 3)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, cn := peer(); cn == "second" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new certificate was not served after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A device flow: authorize, then approve through the admin API.
	resp, err := client.PostForm(iss.url+"/device_authorization", url.Values{"client_id": {"demo-app"}})
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := decodeJSON(resp.Body, &d); err != nil || resp.StatusCode != 200 {
		t.Fatalf("device authorization: %d %v %v", resp.StatusCode, err, d)
	}
	resp.Body.Close()
	if _, stderr, err := run("approve", d["user_code"].(string), "--data", data, "--as", "alice"); err != nil {
		t.Fatalf("approve: %v %s", err, stderr)
	}

	admin := func(path string) (int, string) {
		resp, err := http.Get(iss.adminURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		path string
		code int
		want []string
	}{
		{"/healthz", 200, []string{"ok"}},
		{"/readyz", 200, []string{"ready"}},
		{"/metrics", 200, []string{
			`keyless_audit_events_total{event="device.authorize"} 1`,
			`keyless_audit_events_total{event="device.approve"} 1`,
			`keyless_audit_events_total{event="tls.reload"} 1`,
			`keyless_http_requests_total{code="200",endpoint="device_authorization"} 1`,
			`keyless_http_request_duration_seconds_count{endpoint="jwks"}`,
		}},
		// The admin API itself still wants the token.
		{"/admin/v1/keys", 401, nil},
	} {
		code, body := admin(tc.path)
		if code != tc.code {
			t.Errorf("GET %s: %d, want %d", tc.path, code, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: no %q in\n%s", tc.path, w, body)
			}
		}
	}
}

func TestServeTLSFlagsFailClosed(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keyless.yaml")
	if err := os.WriteFile(cfg, []byte(strings.Replace(serveConfig, "%s", "https://127.0.0.1:1", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"cert without key", []string{"--tls-cert", bad}, 2, "go together"},
		{"unreadable pair", []string{"--tls-cert", bad, "--tls-key", bad}, 1, "TLS certificate"},
	} {
		args := append([]string{"serve", "--config", cfg, "--data", filepath.Join(dir, "d"), "--issuer-addr", "127.0.0.1:0"}, tc.args...)
		_, _, err := run(args...)
		if err == nil || exitCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (exit %d), want exit %d with %q", tc.name, err, exitCode(err), tc.code, tc.want)
		}
	}
}

// /readyz follows the shared store: ready with Redis up (and seeded by
// serve), 503 naming the store when Redis is gone, ready again when it is
// back; /healthz stays 200 throughout (a restart would not help).
func TestServeReadyzFollowsSharedStore(t *testing.T) {
	rd := redistest.Start(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keyless.yaml")
	if err := os.WriteFile(cfg, []byte(strings.Replace(serveConfig, "%s", "http://127.0.0.1:1", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	iss := startServe(t, "--config", cfg, "--data", filepath.Join(dir, "data"), "--issuer-addr", "127.0.0.1:0", "--assets", "", "--store", rd.URL())
	get := func(path string) (int, string) {
		resp, err := http.Get(iss.adminURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitReady := func(want int) string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			code, body := get("/readyz")
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz = %d %q, want %d", code, body, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitReady(200)
	rd.Kill()
	if body := waitReady(503); !strings.Contains(body, "shared store unavailable") || strings.Contains(body, rd.Addr()) {
		t.Errorf("/readyz with Redis down: %q (names the check, never the address)", body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz with Redis down: %d", code)
	}
	rd.Restart()
	waitReady(200)
}

// serve --assets naming a directory without a built component is refused
// at start, saying what is missing, as keyless dev does: otherwise the
// page's <script src=".../keyless/keyless.js"> would 404 in the browser.
func TestServeAssetsDirChecked(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keyless.yaml")
	if err := os.WriteFile(cfg, []byte(strings.Replace(serveConfig, "%s", "http://127.0.0.1:1", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	_, _, err := run("serve", "--config", cfg, "--data", filepath.Join(dir, "d"), "--issuer-addr", "127.0.0.1:0", "--assets", empty)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "holds no built web component") {
		t.Fatalf("serve --assets %s: %v (exit %d), want exit 2 naming the missing component", empty, err, exitCode(err))
	}
}
