package lease

import (
	"context"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// Wired as keyless dev/serve wire it (FromConfig), the vending service's
// renewal tokens are swept with the authorization server's records: under
// churn (a lease and two renewals every hour of the injected clock) the
// renewals bucket stops growing once the first families pass their renew
// limit.
func TestRenewalsSweptUnderChurn(t *testing.T) {
	clk := &clock{T: time.Unix(1_800_000_000, 0)}
	src := `
issuer:
  url: ISSUER
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
	h := fromConfigHarness(t, clk, src)
	renewals := func() int {
		n := 0
		_ = h.db.View(context.Background(), func(tx store.Tx) error {
			return tx.ForEach(bucketRenewals, func(string, []byte) error { n++; return nil })
		})
		return n
	}
	var sizes []int
	for range 24 {
		k := newKey(t)
		raw, _, err := h.as.Minter().Issue(context.Background(), token.Spec{
			Subject: "alice", Audience: []string{h.as.Issuer()}, ClientID: "demo-app", Scope: []string{"api:read"}, JKT: jkt(k)})
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
		if _, err := h.as.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, renewals())
	}
	// Families live 4 h: after ~4 rounds as many go as come.
	if mid, last := sizes[11], sizes[len(sizes)-1]; last > mid || last > 6*sizes[0] {
		t.Errorf("renewal records per round = %v: still growing", sizes)
	}
}
