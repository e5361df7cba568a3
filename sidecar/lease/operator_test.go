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
	if err := h.as.Approve(h.t.Context(), da.Str("user_code"), "alice", "test"); err != nil {
		h.t.Fatal(err)
	}
	login = h.postForm("/token", url.Values{"client_id": {"demo-app"}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da.Str("device_code")}}, k)
	if login.Status != 200 {
		return login, result{}
	}
	return login, h.lease(k, map[string]any{"subject_token": login.Str("access_token"), "client_id": "demo-app"})
}

// TestOperatorSemantics: revoking a subject ends what was issued to it up
// to now and nothing later; a block bans until lifted or over, and says
// so; an unknown lease id is an error; the answer counts what ended.
func TestOperatorSemantics(t *testing.T) {
	h := newHarness(t)
	k := newKey(t)
	_, l0 := h.signIn(k)
	if l0.Status != 200 {
		t.Fatalf("first sign-in: %d %s", l0.Status, l0.Raw)
	}
	h.clk.Add(time.Second)

	r := h.admin(map[string]any{"kind": "sub", "value": "alice"})
	if r.Status != 200 || r.Body["ended"] != float64(1) {
		t.Fatalf("revoke sub: %d %s", r.Status, r.Raw)
	}
	wantError(t, h.renew(l0.Str("renewal_token"), k), 400, CodeInvalidGrant)
	if !h.refused(l0.Str("access_token")) {
		t.Fatal("the lease issued before the revocation is still valid")
	}
	// A new sign-in afterwards works, and its lease is valid.
	h.clk.Add(time.Second)
	login, l1 := h.signIn(k)
	if l1.Status != 200 {
		t.Fatalf("sign-in after revoke --sub: %d %s %s", login.Status, login.Raw, l1.Raw)
	}
	if h.refused(l1.Str("access_token")) {
		t.Fatal("a lease issued after the revocation is refused")
	}
	if r := h.renew(l1.Str("renewal_token"), k); r.Status != 200 {
		t.Fatalf("renewal after revoke --sub: %d %s", r.Status, r.Raw)
	}

	// A block: refused, with a message saying so, until lifted.
	h.clk.Add(time.Second)
	r = h.admin(map[string]any{"kind": "sub", "value": "alice", "block": "1h"})
	if r.Status != 200 || r.Str("blocked_until") == "" || r.Body["ended"] != float64(1) {
		t.Fatalf("block: %d %s", r.Status, r.Raw)
	}
	h.clk.Add(time.Minute)
	login, _ = h.signIn(k)
	wantError(t, login, 400, CodeAccessDenied)
	if !strings.Contains(login.Str("error_description"), "blocked") {
		t.Errorf("block refusal does not say so: %s", login.Raw)
	}
	list := h.adminGet(PathAdminRevocations)
	if !strings.Contains(list.Raw, `"blocked":true`) || !strings.Contains(list.Raw, `"value":"alice"`) {
		t.Errorf("--list: %d %s", list.Status, list.Raw)
	}
	if r := h.admin(map[string]any{"kind": "sub", "value": "alice", "unblock": true}); r.Status != 200 {
		t.Fatalf("unblock: %d %s", r.Status, r.Raw)
	}
	h.clk.Add(time.Second)
	if login, l2 := h.signIn(k); l2.Status != 200 {
		t.Fatalf("sign-in after unblock: %d %s", login.Status, login.Raw)
	}
	// The block, left alone, ends by itself too.
	r = h.admin(map[string]any{"kind": "client", "value": "demo-app", "block": "10m"})
	if r.Status != 200 {
		t.Fatalf("block client: %d %s", r.Status, r.Raw)
	}
	h.clk.Add(11 * time.Minute)
	if login, l3 := h.signIn(k); l3.Status != 200 {
		t.Fatalf("sign-in after the block ended: %d %s", login.Status, login.Raw)
	}

	// Exactly a lease: only it ends; an unknown id is refused.
	_, a := h.signIn(k)
	_, b := h.signIn(k)
	if r := h.admin(map[string]any{"kind": "lease", "value": a.Str("lease_id")}); r.Status != 200 || r.Body["ended"] != float64(1) {
		t.Fatalf("revoke lease: %d %s", r.Status, r.Raw)
	}
	if !h.refused(a.Str("access_token")) || h.refused(b.Str("access_token")) {
		t.Error("revoking one lease did not end exactly it")
	}
	wantError(t, h.admin(map[string]any{"kind": "lease", "value": "doesnotexist"}), 404, CodeInvalidRequest)
	for _, bad := range []map[string]any{
		{"kind": "lease", "value": a.Str("lease_id"), "block": "1h"},
		{"kind": "sub", "value": "alice", "block": "forever"},
		{"kind": "sub", "value": "alice", "block": "1h", "unblock": true},
		{"kind": "sub", "value": "alice", "extra": 1},
	} {
		wantError(t, h.admin(bad), 400, CodeInvalidRequest)
	}
}
