package dpop_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDeps keeps the DPoP core small and pure: it ships in the browser and
// edge builds, so it must not pull in JOSE libraries, net/http, storage or
// syscall/js, and it must build for js/wasm and wasip1.
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	forbidden := []string{"net/http", "github.com/lestrrat-go/", "github.com/redis/", "go.etcd.io/bbolt", "cel.dev/", "github.com/prometheus/"}
	for _, target := range [][2]string{{"linux", "amd64"}, {"js", "wasm"}, {"wasip1", "wasm"}} {
		golist := func(args ...string) []string {
			cmd := exec.Command("go", append([]string{"list"}, args...)...)
			cmd.Env = append(cmd.Environ(), "GOOS="+target[0], "GOARCH="+target[1])
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s/%s: go list: %v\n%s", target[0], target[1], err, out)
			}
			return strings.Fields(string(out))
		}
		// syscall/js among direct imports only: the standard library's
		// crypto/rand and time use it on js/wasm.
		if slices.Contains(golist("-f", "{{join .Imports \" \"}}", "."), "syscall/js") {
			t.Errorf("%s/%s: dpop imports syscall/js", target[0], target[1])
		}
		for _, dep := range golist("-deps", ".") {
			for _, f := range forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s/%s: dpop depends on %s", target[0], target[1], dep)
				}
			}
		}
	}
}
