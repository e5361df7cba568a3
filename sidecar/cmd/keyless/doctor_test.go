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
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
)

// doctorConfig is a keyless config for an issuer on addr; maxTTL and the
// expected TTL of its one policy test are parameters, so a test can break
// the policy.
func doctorConfig(t *testing.T, addr, maxTTL, wantTTL string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`issuer:
  url: http://%s
clients:
  - id: demo-app
    scopes: [api:read, api:write]
users:
  - name: alice
    password_hash: %s
policy:
  defaults: {max_ttl: %s}
  apps:
    demo-app:
      scopes: {api:read: read, api:write: write}
      rules: [{name: read, subjects: ["*"], scopes: [api:read]}]
  tests:
    - name: anyone reads
      given: {subject: alice, app: demo-app, ttl: 1h}
      expect: {decision: allow, scopes: [api:read], ttl: %s}
`, addr, hash, maxTTL, wantTTL)
	p := filepath.Join(t.TempDir(), "keyless.yaml")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// proxyConfigFor writes a keyless proxy config whose one upstream is
// upstream, trusting caFile (empty: the system roots) and the issuer iss.
func proxyConfigFor(t *testing.T, iss, upstream, caFile string) string {
	t.Helper()
	tlsSection := ""
	if caFile != "" {
		tlsSection = "\n    tls: {ca_file: " + caFile + "}"
	}
	src := fmt.Sprintf(`public_url: https://api.example.test
upstreams:
  api:
    url: %s%s
routes:
  - {name: read, methods: [GET], path: "/**", upstream: api, scopes: [api:read]}
token:
  issuer: %s
  jwks_url: %s/jwks.json
`, upstream, tlsSection, iss, iss)
	p := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// freeAddr returns a loopback address with a port that was free a moment
// ago: the issuer URL must be in the config before keyless dev starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func runDoctorCLI(now func() time.Time, args ...string) (string, error) {
	out, errOut := &syncBuffer{}, &syncBuffer{}
	err := runDoctor(context.Background(), append(args, "--timeout", "3s"), out, errOut, now)
	return out.String() + errOut.String(), err
}

// reportLine returns the report line of the check named name, or "".
func reportLine(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if len(l) > 6 && strings.HasPrefix(l[6:], name+" ") {
			return l
		}
	}
	return ""
}

func TestDoctor(t *testing.T) {
	addr := freeAddr(t)
	cfg := doctorConfig(t, addr, "15m", "15m")
	dir := filepath.Join(t.TempDir(), "data")
	info, _, _ := startDev(t, dir, "--config", cfg, "--issuer-addr", addr)

	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	api.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes are the point
	defer api.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw}), 0o600)

	// The proxies' copy of the issuer's revocation feed secret.
	feedSecret := filepath.Join(t.TempDir(), "feed.secret")
	b, _ := os.ReadFile(filepath.Join(dir, feedSecretFile))
	os.WriteFile(feedSecret, b, 0o600)

	t.Run("healthy", func(t *testing.T) {
		out, err := runDoctorCLI(nil, "--config", cfg, "--data", dir, "--proxy-config", proxyConfigFor(t, info.IssuerURL, api.URL, ca), "--feed-secret-file", feedSecret)
		if err != nil {
			t.Fatalf("doctor: %v\n%s", err, out)
		}
		for _, name := range []string{"config", "policy", "proxy config", "TTLs", "issuer", "JWKS", "clock", "upstream api", "revocations", "data"} {
			if l := reportLine(out, name); !strings.HasPrefix(l, "OK") {
				t.Errorf("%s: %q, want OK\n%s", name, l, out)
			}
		}
		if l := reportLine(out, "store"); !strings.HasPrefix(l, "SKIP") {
			t.Errorf("store: %q", l)
		}
		if !strings.Contains(out, "0 failed") {
			t.Errorf("summary:\n%s", out)
		}
	})

	t.Run("dev config without issuer.url", func(t *testing.T) {
		b, _ := os.ReadFile(cfg)
		p := filepath.Join(t.TempDir(), "dev.yaml")
		os.WriteFile(p, []byte(strings.Replace(string(b), "  url: http://"+addr+"\n", "", 1)), 0o600)
		out, _ := runDoctorCLI(nil, "--config", p)
		if l := reportLine(out, "issuer"); !strings.HasPrefix(l, "WARN") || !strings.Contains(l, "--issuer") {
			t.Errorf("without --issuer: %q", l)
		}
		out, err := runDoctorCLI(nil, "--config", p, "--issuer", info.IssuerURL)
		if l := reportLine(out, "issuer"); !strings.HasPrefix(l, "OK") || err != nil {
			t.Errorf("with --issuer: %q %v\n%s", l, err, out)
		}
	})

	// Each case breaks one thing; that check fails (or warns) and says
	// what to fix, and the exit status is 1 on any FAIL.
	tests := []struct {
		name   string
		args   func(t *testing.T) []string
		now    func() time.Time
		check  string
		status string
		says   string
	}{
		{"upstream certificate not trusted", func(t *testing.T) []string {
			return []string{"--config", cfg, "--proxy-config", proxyConfigFor(t, info.IssuerURL, api.URL, "")}
		}, nil, "upstream api", "FAIL", "TLS with"},
		{"upstream down", func(t *testing.T) []string {
			return []string{"--config", cfg, "--proxy-config", proxyConfigFor(t, info.IssuerURL, "https://"+freeAddr(t), ca)}
		}, nil, "upstream api", "FAIL", "cannot reach"},
		{"proxy trusts another issuer", func(t *testing.T) []string {
			return []string{"--config", cfg, "--proxy-config", proxyConfigFor(t, "http://127.0.0.1:1", api.URL, ca)}
		}, nil, "issuer", "FAIL", "the proxy trusts the issuer"},
		{"issuer down", func(t *testing.T) []string {
			return []string{"--config", doctorConfig(t, freeAddr(t), "15m", "15m")}
		}, nil, "issuer", "FAIL", "cannot reach the issuer"},
		{"issuer URL differs from the metadata", func(t *testing.T) []string {
			return []string{"--config", doctorConfig(t, strings.Replace(addr, "127.0.0.1", "localhost", 1), "15m", "15m")}
		}, nil, "issuer", "FAIL", "the metadata names the issuer"},
		{"clock ahead", func(t *testing.T) []string { return []string{"--config", cfg} },
			func() time.Time { return time.Now().Add(2 * time.Minute) }, "clock", "FAIL", "differ by 2m"},
		{"clock a little behind", func(t *testing.T) []string { return []string{"--config", cfg} },
			func() time.Time { return time.Now().Add(-20 * time.Second) }, "clock", "WARN", "future skew"},
		{"policy tests fail", func(t *testing.T) []string { return []string{"--config", doctorConfig(t, addr, "15m", "5m")} },
			nil, "policy", "FAIL", "1 of 1 policy test(s) fail"},
		{"long leases", func(t *testing.T) []string { return []string{"--config", doctorConfig(t, addr, "45m", "45m")} },
			nil, "TTLs", "WARN", "demo-app's leases may live 45m"},
		{"config invalid", func(t *testing.T) []string {
			p := filepath.Join(t.TempDir(), "bad.yaml")
			os.WriteFile(p, []byte("issuer:\n  access_token_ttl: 3h\nclientz: []\n"), 0o600)
			return []string{"--config", p}
		}, nil, "config", "FAIL", "clientz"},
		{"redis unreachable", func(t *testing.T) []string {
			return []string{"--config", cfg, "--store", "redis://" + freeAddr(t) + "/0"}
		},
			nil, "store", "FAIL", "Redis does not answer"},
		{"no store and no feed secret to check", func(t *testing.T) []string { return []string{"--config", cfg} },
			nil, "revocations", "WARN", "needs --feed-secret-file"},
		{"wrong feed secret", func(t *testing.T) []string {
			p := filepath.Join(t.TempDir(), "feed.secret")
			os.WriteFile(p, []byte("not-the-secret\n"), 0o600)
			return []string{"--config", cfg, "--feed-secret-file", p}
		}, nil, "revocations", "FAIL", "refuses this secret"},
		{"data readable by others", func(t *testing.T) []string {
			d := t.TempDir()
			os.WriteFile(filepath.Join(d, adminTokenFile), []byte("x\n"), 0o644)
			return []string{"--config", cfg, "--data", d}
		}, nil, "data", "FAIL", "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runDoctorCLI(tt.now, tt.args(t)...)
			l := reportLine(out, tt.check)
			if !strings.HasPrefix(l, tt.status) || !strings.Contains(l, tt.says) {
				t.Errorf("%s line = %q, want %s saying %q\n%s", tt.check, l, tt.status, tt.says, out)
			}
			if (err != nil) != (tt.status == "FAIL") || (err != nil && exitCode(err) != 1) {
				t.Errorf("err = %v (exit %d) with a %s\n%s", err, exitCode(err), tt.status, out)
			}
			if tt.status == "FAIL" && !strings.Contains(l, "Fix:") && tt.check != "issuer" {
				t.Errorf("no fix given: %q", l)
			}
		})
	}
}

func TestDoctorUsage(t *testing.T) {
	if _, err := runDoctorCLI(nil); exitCode(err) != 2 {
		t.Errorf("no --config: exit %d", exitCode(err))
	}
	out, err := runDoctorCLI(nil, "--help")
	if exitCode(err) != 0 || !strings.Contains(out, "Usage: keyless doctor") {
		t.Errorf("--help: %v %q", err, out)
	}
}

// writeClientCert makes a CA and a client certificate it signed, writes
// the certificate and key as PEM files, and returns their paths with the
// CA's pool, for an upstream that requires mutual TLS.
func writeClientCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "keyless proxy"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return certFile, keyFile, pool
}

// TestDoctorMutualTLS: an upstream that requires a client certificate is
// a TLS failure without one and OK with the configured one.
func TestDoctorMutualTLS(t *testing.T) {
	addr := freeAddr(t)
	cfg := doctorConfig(t, addr, "15m", "15m")
	info, _, _ := startDev(t, filepath.Join(t.TempDir(), "data"), "--config", cfg, "--issuer-addr", addr)
	certFile, keyFile, clientCAs := writeClientCert(t)
	api := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	api.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	api.Config.ErrorLog = log.New(io.Discard, "", 0)
	api.StartTLS()
	defer api.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw}), 0o600)

	without := proxyConfigFor(t, info.IssuerURL, api.URL, ca)
	out, err := runDoctorCLI(nil, "--config", cfg, "--proxy-config", without)
	if l := reportLine(out, "upstream api"); !strings.HasPrefix(l, "FAIL") || !strings.Contains(l, "TLS with") || exitCode(err) != 1 {
		t.Errorf("no client certificate: %q (err %v)\n%s", l, err, out)
	}
	b, _ := os.ReadFile(without)
	with := filepath.Join(t.TempDir(), "proxy.yaml")
	os.WriteFile(with, []byte(strings.Replace(string(b), "tls: {ca_file: "+ca+"}",
		"tls: {ca_file: "+ca+", cert_file: "+certFile+", key_file: "+keyFile+"}", 1)), 0o600)
	out, err = runDoctorCLI(nil, "--config", cfg, "--proxy-config", with)
	if l := reportLine(out, "upstream api"); !strings.HasPrefix(l, "OK") || !strings.Contains(l, "with the client certificate") || err != nil {
		t.Errorf("with the client certificate: %q (err %v)\n%s", l, err, out)
	}
}

// TestDoctorRedis: a Redis that may evict keys fails; one with noeviction
// that no issuer has seeded yet warns.
func TestDoctorRedis(t *testing.T) {
	srv := redistest.Start(t)
	cfg := doctorConfig(t, freeAddr(t), "15m", "15m")
	st, err := redisstore.New(srv.URL(), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for _, tt := range []struct{ policy, status, says string }{
		{"noeviction", "WARN", "not seeded"},
		{"allkeys-lru", "FAIL", "set noeviction"},
	} {
		if err := st.Client().ConfigSet(ctx, "maxmemory-policy", tt.policy).Err(); err != nil {
			t.Fatal(err)
		}
		out, _ := runDoctorCLI(nil, "--config", cfg, "--store", srv.URL())
		if l := reportLine(out, "store"); !strings.HasPrefix(l, tt.status) || !strings.Contains(l, tt.says) {
			t.Errorf("%s: %q, want %s saying %q", tt.policy, l, tt.status, tt.says)
		}
	}
}
