package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jwxjwk "github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/keyless-dev/keyless/sidecar/config"
)

// testIdP is an external issuer's metadata and JWKS, each breakable.
type testIdP struct {
	srv  *httptest.Server
	mu   sync.Mutex
	iss  string // what the metadata names
	jwks []byte
	down bool
}

func newTestIdP(t *testing.T, bits int) *testIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := jwxjwk.FromRaw(key.Public())
	k.Set(jwxjwk.KeyIDKey, "k1")
	set := jwxjwk.NewSet()
	set.AddKey(k)
	b, _ := json.Marshal(set)
	p := &testIdP{jwks: b}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.down {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]string{"issuer": p.iss, "jwks_uri": p.srv.URL + "/jwks"})
		case "/jwks":
			w.Write(p.jwks)
		default:
			http.NotFound(w, r)
		}
	}))
	p.iss = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// withIssuer appends a vending section trusting idp to a config file.
func withIssuer(t *testing.T, cfgPath, idp string) string {
	t.Helper()
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b) + "vending:\n  issuers:\n    - {name: corp, issuer: " + idp + ", audience: keyless}\n"
	p := filepath.Join(t.TempDir(), "keyless.yaml")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// keyless doctor checks every external issuer, and keyless serve refuses
// one whose tokens could never pass.
func TestDoctorExternalIssuers(t *testing.T) {
	good := newTestIdP(t, 2048)
	down := newTestIdP(t, 2048)
	down.down = true
	weak := newTestIdP(t, 1024)
	impostor := newTestIdP(t, 2048)
	impostor.iss = "https://impostor.example.test"
	base := doctorConfig(t, freeAddr(t), "15m", "15m")

	tests := []struct {
		name        string
		idp         *testIdP
		now         func() time.Time
		status      string
		says        string
		serveRefuse bool
	}{
		{"healthy", good, nil, "OK", "a key of an allowed alg", false},
		{"IdP down", down, nil, "FAIL", "does not answer", false},
		{"only a 1024-bit RSA key", weak, nil, "FAIL", "RSA keys need 2048 bits", true},
		{"metadata names another issuer", impostor, nil, "FAIL", "names issuer", true},
		{"clocks 5 minutes apart", good, func() time.Time { return time.Now().Add(5 * time.Minute) }, "FAIL", "clock skew", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := withIssuer(t, base, tt.idp.srv.URL)
			out, _ := runDoctorCLI(tt.now, "--config", cfg)
			l := reportLine(out, "idp corp")
			if !strings.HasPrefix(l, tt.status) || !strings.Contains(l, tt.says) {
				t.Errorf("idp corp line = %q, want %s saying %q\n%s", l, tt.status, tt.says, out)
			}
			if tt.now != nil {
				return // serve uses the real clock
			}
			c, err := config.Load(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = checkExternalIssuers(context.Background(), cfg, c, slog.New(slog.NewJSONHandler(io.Discard, nil)))
			if (err != nil) != tt.serveRefuse {
				t.Errorf("serve's start-up check = %v, want refusal %v", err, tt.serveRefuse)
			}
		})
	}
}
