package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func hash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestParseGood(t *testing.T) {
	y := `
issuer:
  url: https://auth.example.test
  access_token_ttl: 5m
clients:
  - id: demo-app
    scopes: [api:read, api:write]
    default_scopes: [api:read]
users:
  - name: alice
    password_hash: "` + hash(t, "pw") + `"
proxy:
  listen: 127.0.0.1:8788
  anything: [goes, here]
policy:
  routes: []
`
	c, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Issuer.AccessTokenTTL.Or(DefaultAccessTokenTTL); got != 5*time.Minute {
		t.Errorf("access_token_ttl = %v", got)
	}
	if c.Client("demo-app") == nil || c.User("alice") == nil || c.Client("x") != nil {
		t.Error("lookups failed")
	}
	var proxy struct {
		Listen string `yaml:"listen"`
	}
	if err := c.Proxy.Decode(&proxy); err != nil || proxy.Listen != "127.0.0.1:8788" {
		t.Errorf("proxy section = %+v, %v", proxy, err)
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	y := `
issuer:
  url: http://auth.example.test/
  access_token_ttl: 2h
clients:
  - id: ""
    scopes: []
  - id: "a b"
    scopes: ["x y"]
    default_scopes: [z]
users:
  - name: bob
    password_hash: hunter2
  - name: bob
    password_hash: hunter2
`
	_, err := Parse([]byte(y))
	if err == nil {
		t.Fatal("Parse accepted a bad config")
	}
	for _, want := range []string{
		"issuer.url", "access_token_ttl", "clients[0]: id is required", "at least one scope",
		"clients[1] (a b): id must be", `"x y" is not a valid scope`, `default_scopes: "z"`,
		"plain-text passwords", `duplicate name "bob"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for name, y := range map[string]string{
		"unknown top-level field": "issur: {}\n",
		"unknown issuer field":    "issuer: {urll: x}\n",
		"bad duration":            "issuer: {access_token_ttl: soon}\n",
		"not a mapping":           "- a\n",
	} {
		if _, err := Parse([]byte(y)); err == nil {
			t.Errorf("%s: Parse succeeded", name)
		}
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k.yaml")
	if err := os.WriteFile(p, []byte("clients: [{id: a, scopes: [s]}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil || len(c.Clients) != 1 {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func TestSandbox(t *testing.T) {
	c, err := Sandbox("pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	cl := c.Client(SandboxClientID)
	if cl == nil || cl.SecretHash != "" || strings.Join(cl.DefaultScopes, " ") != "api:read" {
		t.Errorf("sandbox client = %+v", cl)
	}
	if bcrypt.CompareHashAndPassword([]byte(c.User(SandboxUser).PasswordHash), []byte("pw")) != nil {
		t.Error("sandbox password does not match its hash")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("clients: [{id: a, scopes: [s]}]\n"))
	f.Add([]byte("issuer: {access_token_ttl: 1m}\nproxy: {x: 1}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err == nil && c.Validate() != nil {
			t.Fatal("Parse returned a config that does not validate")
		}
	})
}

// issuer.trusted_proxies: addresses and CIDR prefixes, IPv4 and IPv6; a
// bad entry is an error naming its key path; nothing that trusts every
// address.
func TestTrustedProxies(t *testing.T) {
	good := map[string]string{
		"127.0.0.1":      "127.0.0.1/32",
		"10.0.0.0/8":     "10.0.0.0/8",
		"10.1.2.3/8":     "10.0.0.0/8", // masked
		"::1":            "::1/128",
		"2001:db8::/32":  "2001:db8::/32",
		"fd00::1234/120": "fd00::1200/120",
	}
	for in, want := range good {
		p, err := ParseTrustedProxy(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseTrustedProxy(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "localhost", "10.0.0.0/33", "10.0.0.256", "0.0.0.0/0", "::/0",
		"fe80::1%eth0", "::ffff:10.0.0.1", "::ffff:10.0.0.0/104", "10.0.0.1 ", "10.0.0.0/8/8", "*"} {
		if p, err := ParseTrustedProxy(in); err == nil {
			t.Errorf("ParseTrustedProxy(%q) = %v, want an error", in, p)
		}
	}

	y := "issuer:\n  url: https://auth.example.test\n  trusted_proxies: [\"10.0.0.0/8\", \"127.0.0.1\", \"10.0.0.0/33\", \"::/0\"]\n"
	_, err := Parse([]byte(y))
	if err == nil {
		t.Fatal("Parse accepted bad trusted_proxies")
	}
	for _, want := range []string{`issuer.trusted_proxies[2]: "10.0.0.0/33" is not an IP address or CIDR prefix`,
		`issuer.trusted_proxies[3]: "::/0" trusts every address`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "trusted_proxies[0]") || strings.Contains(err.Error(), "trusted_proxies[1]") {
		t.Errorf("good entries reported: %v", err)
	}

	c, err := Parse([]byte("issuer:\n  trusted_proxies: [\"10.0.0.0/8\", \"::1\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.Issuer.TrustedProxyPrefixes()
	if err != nil || len(ps) != 2 || ps[0].String() != "10.0.0.0/8" || ps[1].String() != "::1/128" {
		t.Errorf("TrustedProxyPrefixes = %v, %v", ps, err)
	}
	// A scalar where a list belongs is a strict-YAML error with its line.
	if _, err := Parse([]byte("issuer:\n  trusted_proxies: 10.0.0.0/8\n")); err == nil || !strings.Contains(err.Error(), "line 2: issuer.trusted_proxies: must be a list") {
		t.Errorf("scalar trusted_proxies: %v", err)
	}
}
