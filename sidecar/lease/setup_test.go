package lease

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyless-dev/keyless/sidecar/authserver"
	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// The embedded authorization server is the usual AuthServer; the tests may
// import it, the vending service may not (internal/repotest TestLayers).
var _ AuthServer = (*authserver.Server)(nil)

func TestSandboxPolicy(t *testing.T) {
	cfg, err := config.Sandbox("pw")
	if err != nil {
		t.Fatal(err)
	}
	p, err := SandboxPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Evaluate(policy.Request{App: config.SandboxClientID, Subject: config.SandboxUser, Time: policy.DefaultTestTime})
	if !d.Allow || strings.Join(d.Scopes, " ") != "api:read" || d.TTL != policy.DefaultMaxTTL {
		t.Errorf("default lease: %+v", d)
	}
	if d := p.Evaluate(policy.Request{App: config.SandboxClientID, Subject: "anyone", Scopes: []string{"api:write"}}); !d.Allow {
		t.Errorf("write lease: %+v", d)
	}
}

// TestFromConfig wires the service the way keyless dev/serve would, from
// a config file with policy and vending sections, and leases through the
// token endpoint.
func TestFromConfig(t *testing.T) {
	clk := &clock{T: time.Unix(1_800_000_000, 0)}
	src := `
issuer:
  url: ISSUER
clients:
  - id: demo-app
    scopes: [api:read, api:write]
vending:
  audience: https://api.example.test
policy:
  apps:
    demo-app:
      scopes: {api:read: read, api:write: write}
      rules: [{name: all, subjects: ["*"], scopes: [api:read]}]
`
	h := fromConfigHarness(t, clk, src)
	k := newKey(t)
	raw, _, err := h.as.Minter().Issue(context.Background(), token.Spec{
		Subject: "alice", Audience: []string{h.as.Issuer()}, ClientID: "demo-app", Scope: []string{"api:read"}, JKT: jkt(k)})
	if err != nil {
		t.Fatal(err)
	}
	r := h.lease(k, map[string]any{"subject_token": raw, "client_id": "demo-app"})
	if r.Status != 200 || r.Str("scope") != "api:read" {
		t.Fatalf("lease: %d %s", r.Status, r.Raw)
	}
	h.verifyLease(r.Str("access_token"), "https://api.example.test")
	if r := h.renew(r.Str("renewal_token"), k); r.Status != 200 {
		t.Fatalf("renew: %d %s", r.Status, r.Raw)
	}

	// A broken policy never starts the service, and says where.
	bad := strings.Replace(src, "rules: [{name: all,", "rules: [{nmae: all,", 1)
	var cfg2 config.Config
	if err := yaml.Unmarshal([]byte(bad), &cfg2); err != nil {
		t.Fatal(err)
	}
	if _, err := FromConfig(Setup{File: "keyless.yaml", Config: &cfg2, Server: h.as, DB: h.db}); err == nil || !strings.Contains(err.Error(), "keyless.yaml:13: policy.apps.demo-app.rules[0]: unknown field \"nmae\" (did you mean \"name\"?)") {
		t.Fatalf("broken policy: %v", err)
	}
	cfg2.Policy = yaml.Node{}
	if _, err := FromConfig(Setup{File: "keyless.yaml", Config: &cfg2, Server: h.as, DB: h.db}); err == nil || !strings.Contains(err.Error(), "no policy") {
		t.Fatalf("no policy: %v", err)
	}
}

// fromConfigHarness serves the vending service wired as keyless dev/serve
// wire it (FromConfig) from the config src, on a bolt database and the
// injected clock; "ISSUER" in src stands for the server's URL.
func fromConfigHarness(t *testing.T, clk *clock, src string) *harness {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	src = strings.ReplaceAll(src, "ISSUER", "http://"+srv.Listener.Addr().String())
	var cfg config.Config
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "k.db"), boltstore.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	as, err := authserver.New(context.Background(), authserver.Options{Config: &cfg, DB: db, Revocations: db, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := FromConfig(Setup{File: "keyless.yaml", Config: &cfg, Server: as, DB: db, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/lease", svc.Handler())
	mux.Handle("/v1/lease/", svc.Handler())
	mux.Handle("/", as.Handler())
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return &harness{t: t, clk: clk, srv: srv, as: as, svc: svc, db: db}
}
