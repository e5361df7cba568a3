package lease

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
)

// getList calls GET /admin/v1/lease/list with the Authorization header
// auth (empty: none).
func (h *harness) getList(query, auth string) result {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+PathAdminList+query, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return h.do(req)
}

func listed(t *testing.T, r result) []map[string]any {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("list: %d %s", r.Status, r.Raw)
	}
	raw, _ := r.Body["leases"].([]any)
	out := make([]map[string]any, len(raw))
	for i, v := range raw {
		out[i], _ = v.(map[string]any)
	}
	return out
}

func TestAdminListLeases(t *testing.T) {
	h := newHarness(t)
	const auth = "Bearer admin-secret"
	ka, kb := newKey(t), newKey(t)
	ra := h.lease(ka, map[string]any{"subject_token": h.login("alice", "demo-app", readWrite, ka), "client_id": "demo-app", "ttl": 60})
	h.clk.Add(time.Second)
	rb := h.lease(kb, map[string]any{"subject_token": h.login("bob", "other-app", readOnly, kb), "client_id": "other-app"})
	if ra.Status != 200 || rb.Status != 200 {
		t.Fatalf("leases: %s %s", ra.Raw, rb.Raw)
	}

	t.Run("auth", func(t *testing.T) {
		for name, a := range map[string]string{"none": "", "wrong": "Bearer admin-secreT", "not bearer": "Basic admin-secret", "empty bearer": "Bearer "} {
			r := h.getList("", a)
			if r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" || r.Body["leases"] != nil {
				t.Errorf("%s: %d %s, want 401 with WWW-Authenticate and no leases", name, r.Status, r.Raw)
			}
		}
	})

	now := h.clk.Now()
	tests := []struct {
		name, query string
		want        []string // lease ids, newest first
	}{
		{"all", "", []string{rb.Str("lease_id"), ra.Str("lease_id")}},
		{"client", "?client=demo-app", []string{ra.Str("lease_id")}},
		{"sub", "?sub=bob", []string{rb.Str("lease_id")}},
		{"client and sub", "?client=demo-app&sub=bob", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := listed(t, h.getList(tt.query, auth))
			if len(ls) != len(tt.want) {
				t.Fatalf("%d leases, want %d: %v", len(ls), len(tt.want), ls)
			}
			for i, id := range tt.want {
				if ls[i]["lease_id"] != id {
					t.Errorf("leases[%d] = %v, want %s", i, ls[i]["lease_id"], id)
				}
			}
		})
	}
	a := listed(t, h.getList("?sub=alice", auth))[0]
	wantExp := now.Add(-time.Second).Add(time.Minute).UTC().Format(time.RFC3339)
	if a["client_id"] != "demo-app" || a["jkt"] != jkt(ka) || a["expires_at"] != wantExp ||
		a["renewable_until"] != now.Add(-time.Second).Add(8*time.Hour).UTC().Format(time.RFC3339) {
		t.Errorf("alice's lease = %v (want expires_at %s)", a, wantExp)
	}
	if sc, _ := a["scope"].([]any); len(sc) != 1 || sc[0] != "orders:read" {
		t.Errorf("scope = %v", a["scope"])
	}

	// A renewal moves the same lease's expiry.
	h.clk.Add(30 * time.Second)
	if r := h.postJSON(PathRenew, map[string]any{"renewal_token": ra.Str("renewal_token")}, ka); r.Status != 200 {
		t.Fatalf("renew: %s", r.Raw)
	}
	ls := listed(t, h.getList("?sub=alice", auth))
	if len(ls) != 1 || ls[0]["lease_id"] != ra.Str("lease_id") || ls[0]["expires_at"] == wantExp {
		t.Errorf("after renewal: %v", ls)
	}
	// Past its expiry a renewable lease is still listed; revoked, it is not.
	h.clk.Add(5 * time.Minute)
	if ls := listed(t, h.getList("?sub=alice", auth)); len(ls) != 1 {
		t.Errorf("expired but renewable: %v", ls)
	}
	if r := h.postJSON(PathAdmin, map[string]any{"kind": "sub", "value": "alice"}, nil, "Authorization", auth); r.Status != 200 {
		t.Fatalf("revoke: %s", r.Raw)
	}
	if ls := listed(t, h.getList("", auth)); len(ls) != 1 || ls[0]["sub"] != "bob" {
		t.Errorf("after revoking alice: %v", ls)
	}
	// Past every renewal limit nothing is listed.
	h.clk.Add(9 * time.Hour)
	if ls := listed(t, h.getList("", auth)); len(ls) != 0 {
		t.Errorf("after the renewal limits: %v", ls)
	}
	if r := h.postJSON(PathAdminList, map[string]any{}, nil, "Authorization", auth); r.Status != http.StatusMethodNotAllowed {
		t.Errorf("POST list: %d", r.Status)
	}
}

func TestKVLeases(t *testing.T) {
	db, err := boltstore.Open(filepath.Join(t.TempDir(), boltstore.FileName), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Unix(1_800_000_000, 0).UTC()
	tests := []struct {
		name string
		a    Active
		live []time.Duration // instants (after t0) at which it is listed
		dead []time.Duration
	}{
		{"plain", Active{LeaseID: "plain", ExpiresAt: t0.Add(time.Minute)}, []time.Duration{0, 59 * time.Second}, []time.Duration{time.Minute}},
		{"renewable", Active{LeaseID: "ren", ExpiresAt: t0.Add(time.Minute), RenewableUntil: t0.Add(time.Hour)}, []time.Duration{2 * time.Minute}, []time.Duration{time.Hour}},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, idx := range []LeaseIndex{&KVLeases{KV: db}, NewMemLeases()} {
				has := func(d time.Duration) bool {
					ls, err := idx.List(ctx, t0.Add(d))
					if err != nil {
						t.Fatal(err)
					}
					for _, l := range ls {
						if l.LeaseID == tt.a.LeaseID {
							return true
						}
					}
					return false
				}
				a := tt.a
				a.IssuedAt = t0
				if err := idx.Record(ctx, &a); err != nil {
					t.Fatal(err)
				}
				for _, d := range tt.live {
					if !has(d) {
						t.Errorf("%T: not listed at +%v", idx, d)
					}
				}
				for _, d := range tt.dead {
					if has(d) {
						t.Errorf("%T: listed at +%v", idx, d)
					}
				}
				if has(0) { // pruned, not just hidden
					t.Errorf("%T: a lapsed entry came back", idx)
				}
			}
		})
	}
}
