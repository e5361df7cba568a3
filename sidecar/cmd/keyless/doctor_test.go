package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
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

	t.Run("healthy", func(t *testing.T) {
		out, err := runDoctorCLI(nil, "--config", cfg, "--data", dir, "--proxy-config", proxyConfigFor(t, info.IssuerURL, api.URL, ca))
		if err != nil {
			t.Fatalf("doctor: %v\n%s", err, out)
		}
		for _, name := range []string{"config", "policy", "proxy config", "TTLs", "issuer", "JWKS", "clock", "upstream api", "data"} {
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
