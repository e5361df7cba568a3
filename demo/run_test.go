package demo

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A second `make demo` while one runs must fail on the port before it
// writes anything: the running demo keeps its secrets and its log.
func TestRunChecksPortsFirst(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	data := t.TempDir()
	files := map[string]string{
		"secrets/api-key":  "the running demo's key\n",
		"logs/keyless.log": "the running demo's log\n",
	}
	for name, body := range files {
		p := filepath.Join(data, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "run.sh")
	cmd.Env = append(os.Environ(), "DEMO_DATA="+data,
		"DEMO_ISSUER_PORT="+free(), "DEMO_PROXY_PORT="+strconv.Itoa(busy.Addr().(*net.TCPAddr).Port),
		"DEMO_APP_PORT="+free(), "DEMO_API_PORT="+free(), "GO=false")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("run.sh succeeded with a busy port:\n%s", out)
	}
	if !strings.Contains(string(out), "DEMO_PROXY_PORT=") || strings.Contains(string(out), "DEMO_APP_PORT=") {
		t.Errorf("the message does not name (only) the variable to set:\n%s", out)
	}
	for name, body := range files {
		b, err := os.ReadFile(filepath.Join(data, name))
		if err != nil || string(b) != body {
			t.Errorf("%s was touched: %q %v", name, b, err)
		}
	}
	ents, _ := os.ReadDir(data)
	if len(ents) != 2 {
		t.Errorf("run.sh wrote into %s: %v", data, ents)
	}
}
