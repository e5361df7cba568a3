package repotest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/keyless-dev/keyless/"

// layers are the dependency arrows that must point down: a package and the
// packages of this module it may never depend on, directly or not.
var layers = []struct {
	pkg       string
	forbidden []string // a package, or every package under a "prefix/"
	allowed   []string // when set: the only packages of this module it may depend on
}{
	// The vending service plugs into a token endpoint through sidecar/oauth
	// and lease.AuthServer, never through the authorization server's
	// package, and knows nothing of the proxy or the command.
	{pkg: "sidecar/lease", forbidden: []string{"sidecar/authserver", "sidecar/proxy", "sidecar/cmd/"}},
	// The authorization server knows nothing of vending or the proxy.
	{pkg: "sidecar/authserver", forbidden: []string{"sidecar/lease", "sidecar/policy", "sidecar/proxy", "sidecar/cmd/"}},
	// The OAuth protocol package sits below both: the request and
	// response types, nothing that holds state.
	{pkg: "sidecar/oauth", allowed: []string{"sidecar/oauth", "sidecar/config", "sidecar/dpop", "sidecar/dpop/proof",
		"sidecar/internal/uri", "sidecar/internal/strictjson",
		// dpop/proof writes its JSON through this.
		"internal/flatjson",
		// config reads YAML through these.
		"sidecar/internal/strictyaml", "sidecar/internal/suggest"}},
}

// TestLayers keeps the dependency arrows pointing down: no package
// imports a sibling (or anything above it) to reuse a helper.
func TestLayers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	args := []string{"-C", root, "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`}
	for _, l := range layers {
		args = append(args, "./"+l.pkg)
	}
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := map[string][]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, d := range f[1:] {
			if rel, ok := strings.CutPrefix(d, mod); ok {
				deps[strings.TrimPrefix(f[0], mod)] = append(deps[strings.TrimPrefix(f[0], mod)], rel)
			}
		}
	}
	for _, l := range layers {
		ds, ok := deps[l.pkg]
		if !ok || len(ds) == 0 {
			t.Errorf("go list gave no dependencies of %s in this module", l.pkg)
		}
		for _, d := range ds {
			for _, f := range l.forbidden {
				if d == f || strings.HasSuffix(f, "/") && strings.HasPrefix(d, f) || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s depends on %s", l.pkg, d)
				}
			}
			if l.allowed != nil && !slices.Contains(l.allowed, d) {
				t.Errorf("%s depends on %s, which it may not", l.pkg, d)
			}
		}
	}
	if !slices.Contains(deps["sidecar/lease"], "sidecar/oauth") {
		t.Error("sidecar/lease does not depend on sidecar/oauth: the layer check is looking at the wrong thing")
	}
}
