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
