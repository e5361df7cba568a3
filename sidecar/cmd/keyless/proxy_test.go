package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/token"
)

// proxyFixture is the shipped proxy.yaml with token.jwks_url pointed at u.
func proxyFixture(t *testing.T, u string) string {
	t.Helper()
	b, err := os.ReadFile("../../proxy/testdata/proxy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "https://auth.example.test/jwks.json", u, 1)
	if s == string(b) {
		t.Fatal("the fixture's jwks_url moved")
	}
	p := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProxyCommandCheck(t *testing.T) {
	t.Setenv("ORDERS_API_KEY", "test-secret")
	keys, err := token.NewKeySet(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks.json" {
			http.NotFound(w, r)
			return
		}
		b, _ := keys.JWKS()
		w.Write(b)
	}))
	defer jwks.Close()

	var out, errb bytes.Buffer
	if err := Run([]string{"proxy", "--config", proxyFixture(t, jwks.URL+"/jwks.json"), "--check"}, &out, &errb); err != nil {
		t.Fatalf("check: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "ok (6 routes, lease keys fetched)") {
		t.Errorf("output %q", out.String())
	}
	// A jwks_url that 404s: --check fails as /readyz and doctor do.
	err = Run([]string{"proxy", "--config", proxyFixture(t, jwks.URL+"/.well-known/jwks.json"), "--check"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "token.jwks_url") || !strings.Contains(err.Error(), "404") {
		t.Errorf("check with a 404 JWKS: %v", err)
	}
	if err := Run([]string{"proxy"}, &out, &errb); exitCode(err) != 2 {
		t.Errorf("no --config: exit %d, want 2", exitCode(err))
	}
	out.Reset()
	errb.Reset()
	if err := Run([]string{"proxy", "--help"}, &out, &errb); exitCode(err) != 0 || !strings.Contains(out.String()+errb.String(), "docs/configuration.md") ||
		!strings.Contains(out.String(), "--feed-secret-file") || !strings.Contains(out.String(), "--store") {
		t.Errorf("--help: exit %d, usage %q", exitCode(err), out.String()+errb.String())
	}
}

// TestProxyRefusesWithoutRevocations: a proxy with neither a shared store
// nor the issuer's revocation feed would never learn of a revocation; it
// refuses to start and says what to configure.
func TestProxyRefusesWithoutRevocations(t *testing.T) {
	t.Setenv("ORDERS_API_KEY", "test-secret")
	t.Setenv(storeEnv, "")
	var out, errb bytes.Buffer
	err := Run([]string{"proxy", "--config", "../../proxy/testdata/proxy.yaml"}, &out, &errb)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "no way to learn revocations") ||
		!strings.Contains(err.Error(), "--store") || !strings.Contains(err.Error(), "--feed-secret-file") {
		t.Fatalf("exit %d: %v", exitCode(err), err)
	}
	// A secret file others can read is refused too.
	f := filepath.Join(t.TempDir(), "feed.secret")
	os.WriteFile(f, []byte("x\n"), 0o644)
	err = Run([]string{"proxy", "--config", "../../proxy/testdata/proxy.yaml", "--feed-secret-file", f}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable secret: %v", err)
	}
}
