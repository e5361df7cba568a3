package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/proxy"
)

// The proxy's server.tls_cert_file: HTTPS with HTTP/2, and a replaced
// certificate served after SIGHUP without a restart.
func TestProxyTLSReload(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	ca.issue(t, dir, "first", 2)
	listen := freeAddr(t)
	cfg, err := proxy.ParseConfig([]byte(fmt.Sprintf(`
public_url: https://%s
token: {issuer: http://127.0.0.1:1, jwks_url: http://127.0.0.1:1/jwks.json}
upstreams: {api: {url: http://127.0.0.1:1}}
routes:
  - {name: things, methods: [GET], path: /v1/**, upstream: api, scopes: [api:read]}
server:
  listen: %s
  admin_listen: "-"
  tls_cert_file: %s
  tls_key_file: %s
`, listen, listen, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	p, err := proxy.New(cfg, proxy.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- serveProxy(ctx, p, out, log, func() error { return nil }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("proxy did not stop")
		}
	})
	addrRE := regexp.MustCompile(`on (127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; {
		if m := addrRE.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("proxy did not start: %q", out.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, ForceAttemptHTTP2: true, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	peer := func() (string, string) {
		resp, err := client.Get("https://" + addr + "/v1/things")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("no credentials: %d, want 401", resp.StatusCode)
		}
		return resp.Proto, resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if proto, cn := peer(); proto != "HTTP/2.0" || cn != "first" {
		t.Fatalf("%s with %q, want HTTP/2.0 and \"first\"", proto, cn)
	}
	ca.issue(t, dir, "second", 3)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, cn := peer(); cn == "second" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new certificate was not served after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
