package demo

import (
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/proxy"
)

// TestPolicyTests is `keyless policy test demo/keyless.yaml`.
func TestPolicyTests(t *testing.T) {
	p, err := policy.Load("keyless.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tests) < 5 {
		t.Fatalf("%d policy tests, want the demo's cases", len(p.Tests))
	}
	for _, r := range p.RunTests(p.Tests) {
		if !r.Passed() {
			t.Errorf("policy test %q failed: %v", r.Case.Name, r.Problems)
		}
	}
}

func TestConfig(t *testing.T) {
	cfg, err := config.Load("keyless.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.FromNode("keyless.yaml", &cfg.Policy)
	if err != nil {
		t.Fatal(err)
	}
	// Every policy app is a registered client, and the default lease is
	// read-only and 15 minutes.
	for id, app := range p.Apps {
		if cfg.Client(id) == nil {
			t.Errorf("policy app %s is not a client", id)
		}
		for _, r := range app.Rules {
			if r.Write {
				t.Errorf("apps.%s rule %s grants writes", id, r.Name)
			}
		}
	}
	if p.Defaults.MaxTTL.D().Minutes() != 15 {
		t.Errorf("defaults.max_ttl = %v, want 15m", p.Defaults.MaxTTL.D())
	}
	if len(cfg.Users) == 0 {
		t.Error("no sandbox users")
	}

	b, err := yaml.Marshal(&cfg.Proxy)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := proxy.ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	pc.PublicURL = "http://127.0.0.1:8788" // keyless dev: the listen URL
	pc = pc.WithDefaults()
	if err := pc.Validate(); err != nil {
		t.Fatal(err)
	}
	up := pc.Upstreams["recommender"]
	if !strings.HasPrefix(up.URL, "https://127.0.0.1:") || up.TLS.CertFile == "" || up.TLS.KeyFile == "" || up.TLS.CAFile == "" {
		t.Errorf("recommender upstream is not mutual TLS on loopback: %+v", up)
	}
	if up.Credential == nil || up.Credential.Header != "X-Api-Key" || up.Credential.ValueFile == "" {
		t.Errorf("recommender upstream has no API-key credential from a file: %+v", up.Credential)
	}
	for _, f := range []string{up.TLS.CertFile, up.TLS.KeyFile, up.TLS.CAFile, up.Credential.ValueFile} {
		if !strings.HasPrefix(f, ".keyless-demo/secrets/") {
			t.Errorf("%s: secrets must live in the git-ignored .keyless-demo/secrets/", f)
		}
	}
	routes := map[string]proxy.Route{}
	for _, r := range pc.Routes {
		routes[r.Name] = r
	}
	rec, votes := routes["recommendations"], routes["votes"]
	if !slices.Equal(rec.Scopes, []string{"recommendations:read"}) || !slices.Contains(rec.Redact, "restaurants.owner_email") ||
		rec.Preview == nil || rec.RateLimit.PerSubject.IsZero() {
		t.Errorf("recommendations route: %+v", rec)
	}
	if !slices.Equal(votes.Scopes, []string{"recommendations:write"}) || !slices.Equal(votes.Methods, []string{"POST"}) {
		t.Errorf("votes route: %+v", votes)
	}
	for _, h := range []string{"User-Agent", "Referer"} {
		if !slices.Contains(pc.Headers.Scrub, h) {
			t.Errorf("headers.scrub lacks %s", h)
		}
	}
	for _, app := range []string{"where2eat", "where2eat-preview"} {
		if !slices.Contains(pc.CORS.Apps[app], "http://127.0.0.1:8789") {
			t.Errorf("cors.apps.%s lacks the app origin", app)
		}
	}

	// The page asks for the client and scope the config registers.
	page, err := os.ReadFile("app/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`client-id="where2eat"`, `scope="recommendations:read"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("app/index.html lacks %s", want)
		}
	}
}
