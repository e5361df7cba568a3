package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyless-dev/keyless/sidecar/config"
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
		`scope="menu:read votes:read"`, `api="https://api.example.test"`, `src="https://auth.example.test/keyless/keyless.js"`, `src="app.js"`} {
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
	if rd := read("README.md"); !strings.Contains(rd, "script-src 'self' https://auth.example.test 'wasm-unsafe-eval'") ||
		!strings.Contains(rd, "connect-src 'self' https://auth.example.test https://api.example.test") {
		t.Errorf("README.md:\n%s", rd)
	}
	// The config loads as keyless dev loads it; the policy is read-only
	// and its own tests pass.
	cfg, err := config.Load(filepath.Join(dir, "keyless.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Client("lunch-poll"); c == nil || strings.Join(c.Scopes, " ") != "menu:read votes:read" {
		t.Errorf("client = %+v", c)
	}
	if len(cfg.Users) != 1 || cfg.Users[0].Name != "alice" {
		t.Errorf("users = %+v", cfg.Users)
	}
	pw := regexp.MustCompile(`password ([A-Za-z0-9_-]{16})(?:[^A-Za-z0-9_-]|$)`).FindStringSubmatch(out)
	if pw == nil || bcrypt.CompareHashAndPassword([]byte(cfg.Users[0].PasswordHash), []byte(pw[1])) != nil {
		t.Fatalf("the printed password does not match the hash:\n%s", out)
	}
	if strings.Contains(read("keyless.yaml"), pw[1]) {
		t.Error("keyless.yaml holds the password")
	}
	pol := read("keyless.yaml")
	if strings.Contains(pol, ": write") || strings.Contains(pol, "write: true") {
		t.Errorf("policy grants writes:\n%s", pol)
	}
	pout, perr, err := runPolicyCLI("policy", "test", filepath.Join(dir, "keyless.yaml"))
	if err != nil || !strings.Contains(pout, "4 policy tests passed") {
		t.Fatalf("policy test: %v\n%s%s", err, pout, perr)
	}
	for _, f := range []string{"index.html", "app.js", "style.css", "keyless.yaml", "README.md"} {
		// A JWT is "eyJ...." twice (header and payload); a bare "eyJ" can
		// occur by chance in the password's bcrypt hash.
		if c := read(f); strings.Contains(c, "-----BEGIN") || regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.eyJ`).MatchString(c) {
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
	out, errOut, err := runNewCLI("app", "where2eat-2")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	// The printed commands run the scaffold on keyless dev's defaults.
	for _, want := range []string{"keyless policy test where2eat-2/keyless.yaml\n",
		"keyless dev -c where2eat-2/keyless.yaml --app where2eat-2\n", "open http://127.0.0.1:5173/ and sign in as alice"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(filepath.Join("where2eat-2", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `issuer="http://127.0.0.1:8787"`) || !strings.Contains(string(b), `api="http://127.0.0.1:8788"`) ||
		!strings.Contains(string(b), `scope="api:read"`) {
		t.Errorf("defaults are not keyless dev's:\n%s", b)
	}
	if _, _, err := runPolicyCLI("policy", "test", filepath.Join("where2eat-2", "keyless.yaml")); err != nil {
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
		{"origin with a path", []string{"app", "ok", "--origin", "http://127.0.0.1:5173/x y"}},
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
	errOut, _, err := runNewCLI("--help")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "new app NAME") {
		t.Errorf("--help: %v %q", err, errOut)
	}
}

func TestNewAppDevCommand(t *testing.T) {
	tests := []struct {
		issuer, api, origin, want string
	}{
		{"http://127.0.0.1:8787", "http://127.0.0.1:8788", "http://127.0.0.1:5173", "keyless dev -c x/keyless.yaml --app x"},
		{"http://127.0.0.1:9001", "http://127.0.0.1:9002", "http://127.0.0.1:9003",
			"keyless dev -c x/keyless.yaml --app x --issuer-addr 127.0.0.1:9001 --proxy-addr 127.0.0.1:9002 --app-addr 127.0.0.1:9003"},
		{"https://auth.example.test", "https://api.example.test", "https://app.example.test", ""},
	}
	for _, tt := range tests {
		if got := (newApp{Issuer: tt.issuer, API: tt.api, Origin: tt.origin}).devCommand("x"); got != tt.want {
			t.Errorf("devCommand(%s, %s, %s) = %q, want %q", tt.issuer, tt.api, tt.origin, got, tt.want)
		}
	}
}

func TestUsersHash(t *testing.T) {
	defer func(r io.Reader) { stdinReader = r }(stdinReader)
	stdinReader = strings.NewReader("correct horse\n")
	out, _, err := run("users", "hash")
	if err != nil {
		t.Fatal(err)
	}
	if h := strings.TrimSpace(out); bcrypt.CompareHashAndPassword([]byte(h), []byte("correct horse")) != nil {
		t.Errorf("users hash printed %q, not a bcrypt hash of the input", out)
	}
	// With a name: a users: entry that config accepts.
	stdinReader = strings.NewReader("s3cret")
	out, _, err = run("users", "hash", "bob")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("users:\n" + out))
	if err != nil || cfg.User("bob") == nil {
		t.Fatalf("entry %q: %v", out, err)
	}
	for _, tt := range []struct {
		name, in string
		args     []string
	}{
		{"empty", "\n", []string{"hash"}},
		{"over 72 bytes", strings.Repeat("x", 73), []string{"hash"}},
		{"no subcommand", "x", nil},
		{"bad name", "x", []string{"hash", "a b"}},
	} {
		stdinReader = strings.NewReader(tt.in)
		if _, _, err := run(append([]string{"users"}, tt.args...)...); exitCode(err) != 2 {
			t.Errorf("%s: exit %d (%v), want 2", tt.name, exitCode(err), err)
		}
	}
}
