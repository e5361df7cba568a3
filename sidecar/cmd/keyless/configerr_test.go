package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Config mistakes are reported in the config's words, with file:line, the
// key path and the closest known key: never Go's "field scope not found in
// type check.Route".
func TestConfigErrorsInTheConfigsWords(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	proxyYAML := write("proxy.yaml", `public_url: https://api.example.test
token:
  issuer: https://auth.example.test
  jwks_url: https://auth.example.test/jwks.json
  leeway: 30
upstreams:
  api: {url: "http://127.0.0.1:9000"}
routes:
  - path: /v1/**
    upstream: api
    scope: [api:read]
`)
	keylessYAML := write("keyless.yaml", `issuer:
  poll_intervall: 1s
clients:
  - id: app
    scopes: [api:read]
proxy:
  upstreams:
    api: {}
  routes:
    - path: /**
      upstream: api
      scopes: [api:read]
      max_body_bytes: lots
`)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"proxy.yaml", []string{"proxy", "-c", proxyYAML, "--check"}, []string{
			proxyYAML + `:11: routes[0]: unknown field "scope" (did you mean "scopes"?)`,
			proxyYAML + `:5: token.leeway: 30 is not a duration: give it a unit, like 30s or 30m`,
		}},
		{"keyless.yaml issuer", []string{"dev", "--data", filepath.Join(dir, "d1"), "-c", keylessYAML, "--issuer-addr", "127.0.0.1:0", "--proxy-addr", "127.0.0.1:0"}, []string{
			keylessYAML + `:2: issuer: unknown field "poll_intervall" (did you mean "poll_interval"?)`,
		}},
		{"policy check", []string{"policy", "check", write("policy.yaml", "apps:\n  a:\n    scopes: {r: read}\n    rules:\n      - subject: [alice]\n")}, []string{
			`:5: apps.a.rules[0]: unknown field "subject" (did you mean "subjects"?)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := run(tt.args...)
			if err == nil {
				t.Fatal("accepted")
			}
			said := out + errOut + err.Error()
			for _, w := range tt.want {
				if !strings.Contains(said, w) {
					t.Errorf("output %q\nlacks %q", said, w)
				}
			}
			if strings.Contains(said, "not found in type") || strings.Contains(said, "cannot unmarshal") {
				t.Errorf("Go's words: %v", said)
			}
		})
	}

	// The proxy section of keyless.yaml, through keyless dev, with the
	// file's own line.
	fixed := strings.Replace(string(mustRead(t, keylessYAML)), "poll_intervall", "poll_interval", 1)
	write("keyless.yaml", fixed)
	_, _, err := run("dev", "--data", filepath.Join(dir, "d2"), "-c", keylessYAML, "--issuer-addr", "127.0.0.1:0", "--proxy-addr", "127.0.0.1:0")
	if want := keylessYAML + `:13: proxy.routes[0].max_body_bytes: "lots" is not a whole number`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("dev with a bad proxy section: %v\nwant %q", err, want)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
