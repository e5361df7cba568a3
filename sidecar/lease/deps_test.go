package lease_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/keyless-dev/keyless/sidecar/authserver"
	"github.com/keyless-dev/keyless/sidecar/lease"
)

// The embedded authorization server is the usual AuthServer; the test
// package may import it, the vending service may not.
var _ lease.AuthServer = (*authserver.Server)(nil)

// TestDeps keeps the dependency arrows pointing down: the vending service
// plugs into a token endpoint through the shared protocol package
// (sidecar/oauth) and the AuthServer interface, never through the
// authorization server's package, so neither can reach into the other's
// internals.
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	const mod = "github.com/keyless-dev/keyless/sidecar/"
	for _, dep := range deps {
		for _, f := range []string{mod + "authserver", mod + "proxy", mod + "cmd"} {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("lease depends on %s", dep)
			}
		}
	}
	if !slices.Contains(deps, mod+"oauth") {
		t.Errorf("go list -deps lists %d packages and not %soauth", len(deps), mod)
	}
}
