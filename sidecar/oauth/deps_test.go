package oauth_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the protocol package at the bottom: the authorization
// server and the vending service both import it, so it may import neither
// of them, nor the proxy, a store or a token format.
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/keyless-dev/keyless/sidecar/"
	allowed := map[string]bool{mod + "oauth": true, mod + "config": true, mod + "dpop": true, mod + "dpop/proof": true,
		mod + "internal/uri": true, mod + "internal/strictjson": true}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned %d packages", len(deps))
	}
	for _, dep := range deps {
		if strings.HasPrefix(dep, mod) && !allowed[dep] {
			t.Errorf("oauth depends on %s", dep)
		}
	}
}
