package lease

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
)

func (h *harness) leaseFor(sub, app string) (result, dpop.Signer) {
	h.t.Helper()
	k := newKey(h.t)
	r := h.lease(k, map[string]any{"subject_token": h.login(sub, app, readWrite, k), "client_id": app})
	if r.Status != 200 {
		h.t.Fatalf("lease: %d %s", r.Status, r.Raw)
	}
	return r, k
}

func (h *harness) renew(rt string, k dpop.Signer) result {
	h.t.Helper()
	return h.postJSON(PathRenew, map[string]any{"renewal_token": rt}, k)
}

func (h *harness) leaseRevoked(leaseID string) bool {
	h.t.Helper()
	ok, err := h.db.AnyRevoked(context.Background(), store.Revocation{Kind: store.KindLease, Value: leaseID})
	if err != nil {
		h.t.Fatal(err)
	}
	return ok
}

func TestRenewRotates(t *testing.T) {
	h := newHarness(t)
	r0, k := h.leaseFor("alice", "demo-app")
	h.clk.Add(4 * time.Minute)
	r1 := h.renew(r0.Str("renewal_token"), k)
	if r1.Status != 200 {
		t.Fatalf("renew: %d %s", r1.Status, r1.Raw)
	}
	if r1.Str("lease_id") != r0.Str("lease_id") || r1.Str("renewal_token") == r0.Str("renewal_token") || r1.Str("access_token") == r0.Str("access_token") {
		t.Errorf("renewal did not rotate within the lease: %s", r1.Raw)
	}
	c := h.verifyLease(r1.Str("access_token"), apiAud)
	if c.JKT != jkt(k) || c.LeaseID != r0.Str("lease_id") || r1.Body["expires_in"] != float64(300) {
		t.Errorf("renewed claims = %+v, expires_in %v", c, r1.Body["expires_in"])
	}
	if !strings.Contains(h.auditLog(), `"event":"lease.renew"`) {
		t.Error("no renewal audit line")
	}
	// The new token renews again.
	if r2 := h.renew(r1.Str("renewal_token"), k); r2.Status != 200 {
		t.Fatalf("second renew: %d %s", r2.Status, r2.Raw)
	}
}

func TestRenewReuseRevokesFamily(t *testing.T) {
	h := newHarness(t)
	r0, k := h.leaseFor("alice", "demo-app")
	r1 := h.renew(r0.Str("renewal_token"), k)
	if r1.Status != 200 {
		t.Fatalf("renew: %d %s", r1.Status, r1.Raw)
	}
	// An attacker (or a confused tab) replays the used token.
	wantError(t, h.renew(r0.Str("renewal_token"), k), 400, CodeInvalidGrant)
	if !h.leaseRevoked(r0.Str("lease_id")) {
		t.Fatal("reuse did not revoke the lease family")
	}
	// The legitimate newest token is dead too.
	wantError(t, h.renew(r1.Str("renewal_token"), k), 400, CodeInvalidGrant)
	if !strings.Contains(h.auditLog(), `"event":"lease.renewal_reuse"`) {
		t.Error("no reuse audit line")
	}
}

func TestRenewOtherKeyDoesNotBurn(t *testing.T) {
	h := newHarness(t)
	r0, k := h.leaseFor("alice", "demo-app")
	thief := newKey(t)
	wantError(t, h.renew(r0.Str("renewal_token"), thief), 400, CodeInvalidGrant)
	if h.leaseRevoked(r0.Str("lease_id")) {
		t.Fatal("a wrong-key attempt revoked the lease")
	}
	if r := h.renew(r0.Str("renewal_token"), k); r.Status != 200 {
		t.Fatalf("owner renew after thief: %d %s", r.Status, r.Raw)
	}
}

func TestRenewAbsoluteLimit(t *testing.T) {
	h := newHarness(t)
	r0, k := h.leaseFor("zed", "short-app") // renew_limit 20m, cap 15m
	h.clk.Add(10 * time.Minute)
	r1 := h.renew(r0.Str("renewal_token"), k)
	if r1.Status != 200 {
		t.Fatalf("renew: %d %s", r1.Status, r1.Raw)
	}
	// 10 minutes left in the family: the lease is cut to that, truthfully.
	if r1.Body["expires_in"] != float64(600) {
		t.Errorf("expires_in = %v, want 600 (family limit)", r1.Body["expires_in"])
	}
	h.clk.Add(10 * time.Minute)
	wantError(t, h.renew(r1.Str("renewal_token"), k), 400, CodeInvalidGrant)
}

func TestRenewStopsWhenPolicyChanges(t *testing.T) {
	h := newHarness(t)
	r0, k := h.leaseFor("alice", "other-app")
	changed := strings.Replace(testPolicy, `rules: [{name: all, subjects: ["*"], scopes: [orders:read]}, {name: corp-all, issuer: corp, subjects: ["*"], scopes: [orders:read]}]
  preview-app`, `rules: [{name: only-bob, subjects: [bob], scopes: [orders:read]}]
  preview-app`, 1)
	if changed == testPolicy {
		t.Fatal("policy edit did not apply")
	}
	h.setPolicy(changed)
	wantError(t, h.renew(r0.Str("renewal_token"), k), 400, CodeInvalidGrant)
}

func TestRenewStopsAfterAdminRevoke(t *testing.T) {
	for _, kind := range []store.Kind{store.KindLease, store.KindSub, store.KindClient, store.KindJKT} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t)
			r0, k := h.leaseFor("alice", "demo-app")
			value := map[store.Kind]string{store.KindLease: r0.Str("lease_id"), store.KindSub: "alice", store.KindClient: "demo-app", store.KindJKT: jkt(k)}[kind]
			r := h.postJSON(PathAdmin, map[string]any{"kind": string(kind), "value": value}, nil, "Authorization", "Bearer admin-secret")
			if r.Status != 200 {
				t.Fatalf("admin revoke: %d %s", r.Status, r.Raw)
			}
			wantError(t, h.renew(r0.Str("renewal_token"), k), 400, CodeInvalidGrant)
			// The proxy's check (same store, same kinds) now refuses the lease.
			c := h.verifyLease(r0.Str("access_token"), apiAud)
			revoked, _ := h.db.AnyRevoked(context.Background(),
				store.Revocation{Kind: store.KindLease, Value: c.LeaseID}, store.Revocation{Kind: store.KindSub, Value: c.Subject},
				store.Revocation{Kind: store.KindClient, Value: c.ClientID}, store.Revocation{Kind: store.KindJKT, Value: c.JKT})
			if !revoked {
				t.Error("the proxy would still accept the lease")
			}
			if !strings.Contains(h.auditLog(), `"by":"admin"`) {
				t.Error("no admin revocation audit line")
			}
		})
	}
}

func TestAdminHandlerAuth(t *testing.T) {
	h := newHarness(t)
	for _, hdr := range []string{"", "Bearer wrong", "Basic admin-secret"} {
		r := h.postJSON(PathAdmin, map[string]any{"kind": "sub", "value": "alice"}, nil, "Authorization", hdr)
		if r.Status != 401 {
			t.Errorf("Authorization %q: %d", hdr, r.Status)
		}
	}
	r := h.postJSON(PathAdmin, map[string]any{"kind": "family", "value": "x"}, nil, "Authorization", "Bearer admin-secret")
	wantError(t, r, 400, CodeInvalidRequest)
}

func TestOwnerRevoke(t *testing.T) {
	h := newHarness(t)
	revoke := func(tok, client string, k dpop.Signer) result {
		return h.postForm(PathRevoke, url.Values{"token": {tok}, "client_id": {client}, "token_type_hint": {"refresh_token"}}, k)
	}
	t.Run("lease by its owner", func(t *testing.T) {
		r0, k := h.leaseFor("alice", "demo-app")
		if r := revoke(r0.Str("access_token"), "demo-app", k); r.Status != 200 {
			t.Fatalf("revoke: %d %s", r.Status, r.Raw)
		}
		if !h.leaseRevoked(r0.Str("lease_id")) {
			t.Fatal("not revoked")
		}
		wantError(t, h.renew(r0.Str("renewal_token"), k), 400, CodeInvalidGrant)
	})
	t.Run("renewal token by its owner (wrong hint)", func(t *testing.T) {
		r0, k := h.leaseFor("alice", "demo-app")
		if r := revoke(r0.Str("renewal_token"), "demo-app", k); r.Status != 200 {
			t.Fatalf("revoke: %d %s", r.Status, r.Raw)
		}
		if !h.leaseRevoked(r0.Str("lease_id")) {
			t.Fatal("not revoked")
		}
	})
	t.Run("another client's lease stays valid", func(t *testing.T) {
		r0, k := h.leaseFor("alice", "demo-app")
		wantError(t, revoke(r0.Str("access_token"), "other-app", k), 400, CodeUnauthorizedClient)
		if h.leaseRevoked(r0.Str("lease_id")) {
			t.Fatal("revoked by another client")
		}
	})
	t.Run("another key cannot revoke", func(t *testing.T) {
		r0, _ := h.leaseFor("alice", "demo-app")
		wantError(t, revoke(r0.Str("access_token"), "demo-app", newKey(t)), 400, CodeInvalidDPoPProof)
		if h.leaseRevoked(r0.Str("lease_id")) {
			t.Fatal("revoked by another key")
		}
	})
	t.Run("unknown, garbage, already revoked: 200", func(t *testing.T) {
		r0, k := h.leaseFor("alice", "demo-app")
		for _, tok := range []string{"garbage", RenewalPrefix + "nope", "a.b.c", r0.Str("access_token"), r0.Str("access_token")} {
			if r := revoke(tok, "demo-app", k); r.Status != 200 {
				t.Errorf("revoke %.12q: %d %s", tok, r.Status, r.Raw)
			}
		}
	})
	t.Run("no proof", func(t *testing.T) {
		r := h.postForm(PathRevoke, url.Values{"token": {"x"}, "client_id": {"demo-app"}}, nil)
		wantError(t, r, 400, CodeInvalidDPoPProof)
	})
}

// TestIssuerRevokeEndpoint: the issuer's advertised RFC 7009 endpoint
// (what the browser's Sign out and any standard client use) revokes
// leases and renewal tokens, for their owner proving their key only.
func TestIssuerRevokeEndpoint(t *testing.T) {
	h := newHarness(t)
	revoke := func(tok, client, hint string, k dpop.Signer) result {
		f := url.Values{"token": {tok}, "client_id": {client}}
		if hint != "" {
			f.Set("token_type_hint", hint)
		}
		return h.postForm("/revoke", f, k)
	}
	for _, tc := range []struct{ name, tok, hint string }{
		{"lease", "access_token", "access_token"},
		{"lease, wrong hint", "access_token", "refresh_token"},
		{"renewal token", "renewal_token", "refresh_token"},
		{"renewal token, no hint", "renewal_token", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r0, k := h.leaseFor("alice", "demo-app")
			tok := r0.Str(tc.tok)
			wantError(t, revoke(tok, "demo-app", tc.hint, nil), 400, CodeInvalidDPoPProof)
			wantError(t, revoke(tok, "demo-app", tc.hint, newKey(t)), 400, CodeInvalidDPoPProof)
			wantError(t, revoke(tok, "other-app", tc.hint, k), 400, CodeUnauthorizedClient)
			if h.leaseRevoked(r0.Str("lease_id")) {
				t.Fatal("revoked by a refused request")
			}
			if r := revoke(tok, "demo-app", tc.hint, k); r.Status != 200 || r.Raw != "" {
				t.Fatalf("revoke: %d %s", r.Status, r.Raw)
			}
			if !h.leaseRevoked(r0.Str("lease_id")) {
				t.Fatal("not revoked")
			}
			wantError(t, h.renew(r0.Str("renewal_token"), k), 400, CodeInvalidGrant)
			if r := revoke(tok, "demo-app", tc.hint, k); r.Status != 200 {
				t.Errorf("already revoked: %d %s", r.Status, r.Raw)
			}
			if n := countRevokeLines(h.auditLog(), r0.Str("lease_id")); n != 1 {
				t.Errorf("audit lines for revoking the lease = %d, want 1", n)
			}
		})
	}
	t.Run("unknown and garbage: 200", func(t *testing.T) {
		k := newKey(t)
		for _, tok := range []string{"garbage", RenewalPrefix + "nope", "a.b.c"} {
			if r := revoke(tok, "demo-app", "", k); r.Status != 200 || r.Raw != "" {
				t.Errorf("revoke %.12q: %d %s", tok, r.Status, r.Raw)
			}
		}
	})
}

// TestRenewalStores runs the same conformance checks over both stores.
func TestRenewalStores(t *testing.T) {
	clk := &clock{T: time.Unix(1_800_000_000, 0)}
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "r.db"), boltstore.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stores := map[string]RenewalStore{"mem": NewMemRenewals(clk.Now), "kv": &KVRenewals{KV: db, Now: clk.Now}}
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			g := Family{LeaseID: "L", JKT: "J", FamilyExpiry: clk.Now().Add(time.Hour)}
			if err := s.Put(ctx, "h1", &Renewal{Family: g}); err != nil {
				t.Fatal(err)
			}
			if r, err := s.Get(ctx, "h0"); r != nil || err != nil {
				t.Fatalf("Get(unknown) = %v, %v", r, err)
			}
			if err := s.Rotate(ctx, "h1", "h2", &Renewal{Family: g}); err != nil {
				t.Fatal(err)
			}
			if err := s.Rotate(ctx, "h1", "h3", &Renewal{Family: g}); !errors.Is(err, ErrRenewalUsed) {
				t.Fatalf("second Rotate = %v, want ErrRenewalUsed", err)
			}
			r, err := s.Get(ctx, "h1")
			if err != nil || r == nil || !r.Used {
				t.Fatalf("Get(h1) = %+v, %v; want used", r, err)
			}
			if r, _ := s.Get(ctx, "h3"); r != nil {
				t.Fatal("failed rotation stored its token")
			}
			if r, _ := s.Get(ctx, "h2"); r == nil || r.Used || r.Family.LeaseID != "L" {
				t.Fatalf("Get(h2) = %+v", r)
			}
		})
	}
}

// TestLogoutAtIssuerStopsRenewal: revoking the login token at the
// authorization server (RFC 7009) stops the lease family's renewal for
// good, even after the issuer forgets the revoked jti.
func TestLogoutAtIssuerStopsRenewal(t *testing.T) {
	h := newHarness(t)
	k := newKey(t)
	login := h.login("alice", "demo-app", readWrite, k)
	r0 := h.lease(k, map[string]any{"subject_token": login, "client_id": "demo-app"})
	if r0.Status != 200 {
		t.Fatalf("lease: %d %s", r0.Status, r0.Raw)
	}
	if r := h.postForm("/revoke", url.Values{"token": {login}, "client_id": {"demo-app"}}, k); r.Status != 200 {
		t.Fatalf("issuer revoke: %d %s", r.Status, r.Raw)
	}
	wantError(t, h.renew(r0.Str("renewal_token"), k), 400, CodeInvalidGrant)
	h.clk.Add(30 * time.Minute) // the issuer's jti revocation has lapsed
	wantError(t, h.renew(r0.Str("renewal_token"), k), 400, CodeInvalidGrant)
	if !h.leaseRevoked(r0.Str("lease_id")) {
		t.Error("the lease itself is not revoked")
	}
}

// TestRenewConcurrent: two renewals racing with one token; exactly one
// wins (the store's Rotate is atomic), and the loser counts as reuse.
func TestRenewConcurrent(t *testing.T) {
	h := newHarness(t)
	r0, k := h.leaseFor("alice", "demo-app")
	const n = 4
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() { codes <- h.renew(r0.Str("renewal_token"), k).Status }()
	}
	ok := 0
	for i := 0; i < n; i++ {
		if <-codes == 200 {
			ok++
		}
	}
	if ok > 1 {
		t.Fatalf("%d concurrent renewals succeeded with one token", ok)
	}
	if ok == 1 && !h.leaseRevoked(r0.Str("lease_id")) {
		t.Error("the losing renewals did not revoke the family")
	}
}

// TestRevokeExpiredLeaseEndsFamily: the browser logs out with a lease that
// already expired; its family (and renewal token) must still end.
func TestRevokeExpiredLeaseEndsFamily(t *testing.T) {
	h := newHarness(t)
	r0, k := h.leaseFor("alice", "demo-app")
	h.clk.Add(time.Hour) // the 5m lease is long expired; the 8h family is not
	r := h.postForm(PathRevoke, url.Values{"token": {r0.Str("access_token")}, "client_id": {"demo-app"}}, k)
	if r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Raw)
	}
	if !h.leaseRevoked(r0.Str("lease_id")) {
		t.Fatal("the family of an expired lease was not revoked")
	}
	wantError(t, h.renew(r0.Str("renewal_token"), k), 400, CodeInvalidGrant)
}

// TestRenewAtTokenEndpoint: a standard client renews its lease with
// grant_type=refresh_token at the token endpoint, as the browser client
// does; the server's own refresh tokens still work there.
func TestRenewAtTokenEndpoint(t *testing.T) {
	h := newHarness(t)
	r0, k := h.leaseFor("alice", "demo-app")
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r0.Str("renewal_token")}, "client_id": {"demo-app"}}
	r1 := h.postForm("/token", form, k)
	if r1.Status != 200 || r1.Str("token_type") != "DPoP" || r1.Str("refresh_token") == "" || r1.Str("refresh_token") == r0.Str("renewal_token") {
		t.Fatalf("renew at /token: %d %s", r1.Status, r1.Raw)
	}
	if c := h.verifyLease(r1.Str("access_token"), apiAud); c.LeaseID != r0.Str("lease_id") || c.JKT != jkt(k) {
		t.Errorf("renewed lease claims = %+v", c)
	}
	// Single use: the old renewal token is refused (and revokes the lease).
	if r2 := h.postForm("/token", form, k); r2.Status != 400 || r2.Str("error") != "invalid_grant" {
		t.Errorf("reused renewal token at /token: %d %s", r2.Status, r2.Raw)
	}
	// Another key cannot renew.
	r3, k3 := h.leaseFor("bob", "demo-app")
	other := newKey(t)
	form3 := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r3.Str("renewal_token")}, "client_id": {"demo-app"}}
	if r := h.postForm("/token", form3, other); r.Status == 200 {
		t.Errorf("renewed with another key: %s", r.Raw)
	}
	if r := h.postForm("/token", form3, k3); r.Status != 200 {
		t.Errorf("owner's renewal after another key tried: %d %s", r.Status, r.Raw)
	}
}

// countRevokeLines counts the lease.revoke audit lines naming leaseID.
func countRevokeLines(log, leaseID string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, `"event":"lease.revoke"`) && strings.Contains(l, `"lease_id":"`+leaseID+`"`) {
			n++
		}
	}
	return n
}
