package lease

import (
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/federation"
)

// Groups come from the verified token's groups claim through the
// issuer's group_map, and reach the policy (rule corp-ops grants
// orders:write to group ops); renewal decides with the same groups.
func TestGroupsFromToken(t *testing.T) {
	clk := &clock{T: time.Unix(1_800_000_000, 0)}
	ext := newIdP(t, clk)
	h := newHarness(t, func(x *harness) {
		x.clk = clk
		x.extra = []Issuer{extIssuer(t, ext, "corp", IssuerConfig{Config: federation.Config{
			GroupsClaim: "groups", GroupMap: map[string]federation.StringList{"ops-team": {"ops"}}}})}
	})
	k := newKey(t)
	write := func(groups any) result {
		tok := ext.token(t, "gina", "demo-app", map[string]any{"groups": groups, "cnf": map[string]string{"jkt": jkt(k)},
			"exp": clk.Now().Add(time.Hour).Unix()})
		return h.lease(k, map[string]any{"subject_token": tok, "client_id": "demo-app", "scope": "orders:write"})
	}
	r := write([]string{"staff", "ops-team"})
	if r.Status != 200 {
		t.Fatalf("ops-team member: %d %s", r.Status, r.Raw)
	}
	for name, groups := range map[string]any{"group not mapped": []string{"staff", "ops"}, "absent": nil} {
		t.Run(name, func(t *testing.T) { wantError(t, write(groups), 400, CodeInvalidScope) })
	}
	t.Run("not a list of strings", func(t *testing.T) { wantError(t, write([]int{1}), 400, CodeInvalidGrant) })
	// Renewal decides with the groups the token carried.
	if r := h.renew(r.Str("renewal_token"), k); r.Status != 200 {
		t.Fatalf("renew: %d %s", r.Status, r.Raw)
	}
}
