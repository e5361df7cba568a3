package lease

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyless-dev/keyless/sidecar/authserver"
	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// Wired as keyless dev/serve wire it (FromConfig), the vending service's
// renewal tokens are swept with the authorization server's records: under
// churn (a lease and two renewals every hour of the injected clock) the
// renewals bucket stops growing once the first families pass their renew
// limit.
func TestRenewalsSweptUnderChurn(t *testing.T) {
	clk := &clock{T: time.Unix(1_800_000_000, 0)}
	srv := httptest.NewUnstartedServer(nil)
	src := `
issuer:
  url: http://` + srv.Listener.Addr().String() + `
clients:
  - id: demo-app
    scopes: [api:read]
vending:
  audience: https://api.example.test
policy:
  apps:
    demo-app:
      scopes: {api:read: read}
      rules: [{name: all, subjects: ["*"], scopes: [api:read]}]
      renew_limit: 4h
`
	var cfg config.Config
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "k.db"), boltstore.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
	defer srv.Close()
	h := &harness{t: t, clk: clk, srv: srv, as: as, svc: svc, db: db}
	renewals := func() int {
		n := 0
		_ = db.View(context.Background(), func(tx store.Tx) error {
			return tx.ForEach(bucketRenewals, func(string, []byte) error { n++; return nil })
		})
		return n
	}
	var sizes []int
	for range 24 {
		k := newKey(t)
		raw, _, err := as.Minter().Issue(context.Background(), token.Spec{
			Subject: "alice", Audience: []string{as.Issuer()}, ClientID: "demo-app", Scope: []string{"api:read"}, JKT: jkt(k)})
		if err != nil {
			t.Fatal(err)
		}
		r := h.lease(k, map[string]any{"subject_token": raw, "client_id": "demo-app"})
		if r.Status != 200 {
			t.Fatalf("lease: %d %s", r.Status, r.Raw)
		}
		rt := r.Str("renewal_token")
		for range 2 {
			clk.Add(time.Minute)
			r := h.renew(rt, k)
			if r.Status != 200 {
				t.Fatalf("renew: %d %s", r.Status, r.Raw)
			}
			rt = r.Str("renewal_token")
		}
		clk.Add(time.Hour)
		if _, err := as.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, renewals())
	}
	// Families live 4 h: after ~4 rounds as many go as come.
	if mid, last := sizes[11], sizes[len(sizes)-1]; last > mid || last > 6*sizes[0] {
		t.Errorf("renewal records per round = %v: still growing", sizes)
	}
}
