package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA issues certificates at test time; nothing is committed.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyless test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: k, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte, pair tls.Certificate) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM, pair
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMTLSUpstream: the proxy presents a client certificate the upstream
// requires, and verifies the upstream against the configured CA.
func TestMTLSUpstream(t *testing.T) {
	ca := newTestCA(t)
	_, _, serverPair := ca.issue(t, "upstream", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey, _ := ca.issue(t, "keyless-proxy", x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	var peer string
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer = r.TLS.PeerCertificates[0].Subject.CommonName
		w.Write([]byte(`{"mtls":true}`))
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	up.StartTLS()
	t.Cleanup(up.Close)

	dir := t.TempDir()
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	certFile := writeFile(t, dir, "client.pem", clientCert)
	keyFile := writeFile(t, dir, "client.key", clientKey)
	h := newHarness(t, func(h *harness) {
		h.cfg.Upstreams["mtls"] = Upstream{URL: up.URL, TLS: UpstreamTLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}}
		h.cfg.Upstreams["notls"] = Upstream{URL: up.URL, TLS: UpstreamTLS{CAFile: caFile}}
		h.cfg.Routes = append(h.cfg.Routes,
			Route{Name: "mtls", Path: "/mtls", Upstream: "mtls", Scopes: []string{"orders:read"}},
			Route{Name: "notls", Path: "/no-client-cert", Upstream: "notls", Scopes: []string{"orders:read"}})
	})
	res := h.do(h.authed("GET", "/mtls", "orders:read"))
	b, _ := readAll(res)
	if res.StatusCode != 200 || string(b) != `{"mtls":true}` || peer != "keyless-proxy" {
		t.Errorf("mTLS: %d %s, peer %q", res.StatusCode, b, peer)
	}
	// Without the client certificate the upstream refuses: 502.
	if res := h.do(h.authed("GET", "/no-client-cert", "orders:read")); res.StatusCode != 502 {
		t.Errorf("without client cert: %d, want 502", res.StatusCode)
	}
}

// TestCredentialInjection: the upstream gets the secret from a file or the
// environment; the client's own copy of the header is dropped, and the
// client never sees the secret.
func TestCredentialInjection(t *testing.T) {
	const secret = "sk_live_from_file"
	dir := t.TempDir()
	file := writeFile(t, dir, "api-key", []byte(secret+"\n"))
	t.Setenv("KEYLESS_TEST_UPSTREAM_TOKEN", "env-secret")
	h := newHarness(t, func(h *harness) {
		h.cfg.Upstreams["keyed"] = Upstream{URL: h.echo.srv.URL, Credential: &Credential{Header: "X-Api-Key", ValueFile: file}}
		h.cfg.Upstreams["bearer"] = Upstream{URL: h.echo.srv.URL, Credential: &Credential{Header: "Authorization", Prefix: "Bearer ", ValueEnv: "KEYLESS_TEST_UPSTREAM_TOKEN"}}
		h.cfg.Routes = append(h.cfg.Routes,
			Route{Name: "keyed", Path: "/keyed", Upstream: "keyed", Scopes: []string{"orders:read"}},
			Route{Name: "bearer", Path: "/bearer", Upstream: "bearer", Scopes: []string{"orders:read"}})
	})
	r := h.authed("GET", "/keyed", "orders:read")
	r.Header.Set("X-Api-Key", "client-chosen")
	r.Header["X_Api_Key"] = []string{"client-twin"}
	res := h.do(r)
	b, _ := readAll(res)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	got := h.echo.last(t)
	if v := got.Header.Values("X-Api-Key"); len(v) != 1 || v[0] != secret {
		t.Errorf("upstream X-Api-Key = %q, want the file's secret", v)
	}
	if strings.Contains(string(b), secret) || strings.Contains(headerDump(res.Header), secret) {
		t.Error("client saw the secret")
	}
	if len(got.Header.Values("X_api_key")) != 0 {
		t.Error("client's underscore twin of the credential header reached the upstream")
	}
	if res := h.do(h.authed("GET", "/bearer", "orders:read")); res.StatusCode != 200 {
		t.Fatalf("bearer: %d", res.StatusCode)
	}
	if v := h.echo.last(t).Header.Values("Authorization"); len(v) != 1 || v[0] != "Bearer env-secret" {
		t.Errorf("upstream Authorization = %q, want the proxy's own credential, never the lease", v)
	}
	if strings.Contains(h.logs.String(), secret) || strings.Contains(h.logs.String(), "env-secret") {
		t.Error("audit log holds the upstream secret")
	}
}

type failingCredential struct{}

func (failingCredential) Apply(*http.Request) error { return errors.New("sts down") }
func (failingCredential) HeaderNames() []string     { return []string{"X-Sts"} }

func TestCredentialSourceFailsClosed(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.cfg.Upstreams["sts"] = Upstream{URL: h.echo.srv.URL}
		h.cfg.Routes = append(h.cfg.Routes, Route{Name: "sts", Path: "/sts", Upstream: "sts", Scopes: []string{"orders:read"}})
		h.opts.Credentials = map[string]CredentialSource{"sts": failingCredential{}}
	})
	if res := h.do(h.authed("GET", "/sts", "orders:read")); res.StatusCode != 502 || h.echo.hits.Load() != 0 {
		t.Errorf("status %d hits %d, want 502 NF", res.StatusCode, h.echo.hits.Load())
	}
}

func TestCredentialConfigErrors(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:9")
	cfg.Upstreams["echo"] = Upstream{URL: "http://127.0.0.1:9", Credential: &Credential{Header: "X-Api-Key", ValueEnv: "KEYLESS_TEST_UNSET_VARIABLE"}}
	if _, err := New(cfg, Options{Tokens: nopVerifier{}}); err == nil || !strings.Contains(err.Error(), "KEYLESS_TEST_UNSET_VARIABLE") {
		t.Errorf("unset env var: %v", err)
	}
}

func headerDump(h http.Header) string {
	var b strings.Builder
	h.Write(&b)
	return b.String()
}
