package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBrowserDeps is the browser build's negative dependency list: it signs
// with WebCrypto and talks through fetch, so Go's asymmetric crypto and
// net/http (over 1 MB gzip together) must not be linked, nor any server-side
// library; nor encoding/json, net/url and net/netip (about 0.3 MB gzip
// together, most of it reflection), nor image/png and compress/flate (a QR
// code needs neither): the module's 1.0 MB gzip budget (make wasm-size)
// holds only without them.
func TestBrowserDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	cmd := exec.Command("go", "list", "-deps", "..")
	cmd.Env = append(cmd.Environ(), "GOOS=js", "GOARCH=wasm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned %d packages", len(deps))
	}
	forbidden := []string{"net/http", "crypto/ecdsa", "crypto/rsa", "crypto/ed25519",
		"github.com/lestrrat-go/", "github.com/redis/", "go.etcd.io/bbolt", "cel.dev/", "github.com/prometheus/",
		"encoding/json", "net/url", "net/netip", "image/png", "compress/flate"}
	for _, dep := range deps {
		for _, f := range forbidden {
			if (dep == f || strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f) || strings.HasPrefix(dep, f+"/")) && !strings.HasPrefix(dep, "vendor/") {
				t.Errorf("the browser build depends on %s", dep)
			}
		}
	}
}
