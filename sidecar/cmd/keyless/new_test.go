package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runNewCLI(args ...string) (string, string, error) {
	var o, e bytes.Buffer
	err := Run(append([]string{"new"}, args...), &o, &e)
	return o.String(), e.String(), err
}

func TestNewApp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lunch")
	out, errOut, err := runNewCLI("app", "lunch-poll", "--dir", dir, "--issuer", "https://auth.example.test",
		"--api", "https://api.example.test/", "--scope", "menu:read", "--scope", "votes:read", "--endpoint", "/v1/menu")
	if err != nil {
		t.Fatalf("new app: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "Created "+dir) {
		t.Errorf("output %q", out)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	page := read("index.html")
	for _, want := range []string{`issuer="https://auth.example.test"`, `client-id="lunch-poll"`,
		`scope="menu:read votes:read"`, `api="https://api.example.test"`, `src="keyless/keyless.js"`, `src="app.js"`} {
		if !strings.Contains(page, want) {
			t.Errorf("index.html lacks %s:\n%s", want, page)
		}
	}
	// A strict CSP forbids inline code: the page has none.
	for _, bad := range []string{"<script>", "<style", " style=", " onclick="} {
		if strings.Contains(page, bad) {
			t.Errorf("index.html has inline code %q", bad)
		}
	}
	if js := read("app.js"); !strings.Contains(js, "'https://api.example.test/v1/menu'") || !strings.Contains(js, "keyless-expired") {
		t.Errorf("app.js:\n%s", js)
	}
	if rd := read("README.md"); !strings.Contains(rd, "- id: lunch-poll") || !strings.Contains(rd, "connect-src 'self' https://auth.example.test https://api.example.test") {
		t.Errorf("README.md:\n%s", rd)
	}
	// The policy is read-only and its own tests pass.
	pol := read("policy.yaml")
	if strings.Contains(pol, ": write") || strings.Contains(pol, "write: true") {
		t.Errorf("policy grants writes:\n%s", pol)
	}
	pout, perr, err := runPolicyCLI("policy", "test", filepath.Join(dir, "policy.yaml"))
	if err != nil || !strings.Contains(pout, "4 policy tests passed") {
		t.Fatalf("policy test: %v\n%s%s", err, pout, perr)
	}
	for _, f := range []string{"index.html", "app.js", "style.css", "policy.yaml", "README.md"} {
		if c := read(f); strings.Contains(c, "-----BEGIN") || strings.Contains(c, "eyJ") {
			t.Errorf("%s holds key material", f)
		}
	}

	// An existing directory is refused and left alone.
	if err := os.WriteFile(filepath.Join(dir, "app.js"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runNewCLI("app", "lunch-poll", "--dir", dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second new app: %v", err)
	}
	if read("app.js") != "mine" {
		t.Error("an existing file was overwritten")
	}
}

func TestNewAppDefaults(t *testing.T) {
	wd, _ := os.Getwd()
	t.Cleanup(func() { _ = os.Chdir(wd) })
	if err := os.Chdir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := runNewCLI("app", "where2eat-2"); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	b, err := os.ReadFile(filepath.Join("where2eat-2", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `issuer="http://127.0.0.1:8787"`) || !strings.Contains(string(b), `api="http://127.0.0.1:8788"`) ||
		!strings.Contains(string(b), `scope="api:read"`) {
		t.Errorf("defaults are not keyless dev's:\n%s", b)
	}
	if _, _, err := runPolicyCLI("policy", "test", filepath.Join("where2eat-2", "policy.yaml")); err != nil {
		t.Errorf("policy test: %v", err)
	}
}

func TestNewAppUsage(t *testing.T) {
	tmp := t.TempDir()
	tests := []struct {
		name string
		args []string
	}{
		{"no kind", nil},
		{"unknown kind", []string{"service", "x"}},
		{"no name", []string{"app"}},
		{"two names", []string{"app", "a", "b"}},
		{"upper case name", []string{"app", "Lunch"}},
		{"path as name", []string{"app", "../escape"}},
		{"http issuer off loopback", []string{"app", "ok", "--issuer", "http://auth.example.test"}},
		{"issuer with a quote", []string{"app", "ok", "--issuer", `https://a.example.test/"x`}},
		{"relative api", []string{"app", "ok", "--api", "/api"}},
		{"bad scope", []string{"app", "ok", "--scope", "a b"}},
		{"scope with a quote", []string{"app", "ok", "--scope", `x"`}},
		{"endpoint without slash", []string{"app", "ok", "--endpoint", "v1"}},
		{"endpoint with a quote", []string{"app", "ok", "--endpoint", "/v1'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(tt.args, "--dir", filepath.Join(tmp, "x"))
			_, _, err := runNewCLI(args...)
			if exitCode(err) != 2 {
				t.Errorf("exit %d (%v), want 2", exitCode(err), err)
			}
			if _, serr := os.Stat(filepath.Join(tmp, "x")); serr == nil {
				t.Error("a directory was created")
			}
		})
	}
	_, errOut, err := runNewCLI("--help")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "new app NAME") {
		t.Errorf("--help: %v %q", err, errOut)
	}
}
