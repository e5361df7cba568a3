package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// keyless edge init writes a wrangler.toml the Worker loads, from the same
// file keyless proxy --config reads, and lists the secrets to set.
func TestEdgeInit(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "proxy.yaml")
	os.WriteFile(cfg, []byte(`public_url: https://api.example.test
token:
  issuer: https://auth.example.test
  jwks_url: https://auth.example.test/jwks
upstreams:
  api:
    url: https://origin.example.test
    credential: {header: X-Api-Key, value_env: API_KEY}
routes:
  - {name: orders, methods: [GET], path: /v1/orders, upstream: api, scopes: [orders:read]}
`), 0o600)
	out := filepath.Join(dir, "wrangler.toml")
	var stdout, stderr bytes.Buffer
	if err := runEdge([]string{"init", "--config", cfg, "--out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	for _, want := range []string{"wrangler secret put API_KEY", "wrangler secret put KEYLESS_REVOKE_TOKEN"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	toml, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(toml), "path: /v1/orders") {
		t.Fatalf("wrangler.toml: %v\n%s", err, toml)
	}
	// What the Worker would refuse is refused here, before a deploy.
	os.WriteFile(cfg, []byte("public_url: https://api.example.test\nupstreams: {a: {url: 'http://x', credential: {header: X-K, value_file: /k}}}\nroutes: [{path: /x, upstream: a, scopes: [s]}]\n"), 0o600)
	if err := runEdge([]string{"init", "--config", cfg}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "value_file") {
		t.Errorf("value_file config: %v", err)
	}
}
