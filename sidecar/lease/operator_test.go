package lease

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/proxy/check"
)

// refused reports whether the proxy's revocation check refuses a lease.
func (h *harness) refused(raw string) bool {
	h.t.Helper()
	revoked, err := h.db.AnyRevoked(h.t.Context(), check.Revocations(h.verifyLease(raw, apiAud))...)
	if err != nil {
		h.t.Fatal(err)
	}
	return revoked
}

func (h *harness) adminGet(path string) result {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer admin-secret")
	return h.do(req)
}

func (h *harness) admin(body map[string]any) result {
	h.t.Helper()
	return h.postJSON(PathAdmin, body, nil, "Authorization", "Bearer admin-secret")
}

// signIn runs alice's device flow to the token response and vends a
// lease from it; it returns the token response and the lease response.
func (h *harness) signIn(k dpop.Signer) (login, lease result) {
	h.t.Helper()
	da := h.postForm("/device_authorization", url.Values{"client_id": {"demo-app"}, "scope": {"orders:read"}}, k)
	if err := h.as.Approve(h.t.Context(), da.str("user_code"), "alice", "test"); err != nil {
		h.t.Fatal(err)
	}
	login = h.postForm("/token", url.Values{"client_id": {"demo-app"}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da.str("device_code")}}, k)
	if login.status != 200 {
		return login, result{}
	}
	return login, h.lease(k, map[string]any{"subject_token": login.str("access_token"), "client_id": "demo-app"})
}

// TestOperatorSemantics: revoking a subject ends what was issued to it up
// to now and nothing later; a block bans until lifted or over, and says
// so; an unknown lease id is an error; the answer counts what ended.
func TestOperatorSemantics(t *testing.T) {
	h := newHarness(t)
	k := newKey(t)
	_, l0 := h.signIn(k)
	if l0.status != 200 {
		t.Fatalf("first sign-in: %d %s", l0.status, l0.raw)
	}
	h.clk.add(time.Second)

	r := h.admin(map[string]any{"kind": "sub", "value": "alice"})
	if r.status != 200 || r.body["ended"] != float64(1) {
		t.Fatalf("revoke sub: %d %s", r.status, r.raw)
	}
	wantError(t, h.renew(l0.str("renewal_token"), k), 400, CodeInvalidGrant)
	if !h.refused(l0.str("access_token")) {
		t.Fatal("the lease issued before the revocation is still valid")
	}
	// A new sign-in afterwards works, and its lease is valid.
	h.clk.add(time.Second)
	login, l1 := h.signIn(k)
	if l1.status != 200 {
		t.Fatalf("sign-in after revoke --sub: %d %s %s", login.status, login.raw, l1.raw)
	}
	if h.refused(l1.str("access_token")) {
		t.Fatal("a lease issued after the revocation is refused")
	}
	if r := h.renew(l1.str("renewal_token"), k); r.status != 200 {
		t.Fatalf("renewal after revoke --sub: %d %s", r.status, r.raw)
	}

	// A block: refused, with a message saying so, until lifted.
	h.clk.add(time.Second)
	r = h.admin(map[string]any{"kind": "sub", "value": "alice", "block": "1h"})
	if r.status != 200 || r.str("blocked_until") == "" || r.body["ended"] != float64(1) {
		t.Fatalf("block: %d %s", r.status, r.raw)
	}
	h.clk.add(time.Minute)
	login, _ = h.signIn(k)
	wantError(t, login, 400, CodeAccessDenied)
	if !strings.Contains(login.str("error_description"), "blocked") {
		t.Errorf("block refusal does not say so: %s", login.raw)
	}
	list := h.adminGet(PathAdminRevocations)
	if !strings.Contains(list.raw, `"blocked":true`) || !strings.Contains(list.raw, `"value":"alice"`) {
		t.Errorf("--list: %d %s", list.status, list.raw)
	}
	if r := h.admin(map[string]any{"kind": "sub", "value": "alice", "unblock": true}); r.status != 200 {
		t.Fatalf("unblock: %d %s", r.status, r.raw)
	}
	h.clk.add(time.Second)
	if login, l2 := h.signIn(k); l2.status != 200 {
		t.Fatalf("sign-in after unblock: %d %s", login.status, login.raw)
	}
	// The block, left alone, ends by itself too.
	r = h.admin(map[string]any{"kind": "client", "value": "demo-app", "block": "10m"})
	if r.status != 200 {
		t.Fatalf("block client: %d %s", r.status, r.raw)
	}
	h.clk.add(11 * time.Minute)
	if login, l3 := h.signIn(k); l3.status != 200 {
		t.Fatalf("sign-in after the block ended: %d %s", login.status, login.raw)
	}

	// Exactly a lease: only it ends; an unknown id is refused.
	_, a := h.signIn(k)
	_, b := h.signIn(k)
	if r := h.admin(map[string]any{"kind": "lease", "value": a.str("lease_id")}); r.status != 200 || r.body["ended"] != float64(1) {
		t.Fatalf("revoke lease: %d %s", r.status, r.raw)
	}
	if !h.refused(a.str("access_token")) || h.refused(b.str("access_token")) {
		t.Error("revoking one lease did not end exactly it")
	}
	wantError(t, h.admin(map[string]any{"kind": "lease", "value": "doesnotexist"}), 404, CodeInvalidRequest)
	for _, bad := range []map[string]any{
		{"kind": "lease", "value": a.str("lease_id"), "block": "1h"},
		{"kind": "sub", "value": "alice", "block": "forever"},
		{"kind": "sub", "value": "alice", "block": "1h", "unblock": true},
		{"kind": "sub", "value": "alice", "extra": 1},
	} {
		wantError(t, h.admin(bad), 400, CodeInvalidRequest)
	}
}
