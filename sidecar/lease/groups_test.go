package lease

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/token"
)

const groupsIssuer = "https://groups-idp.test"

// stubVerifier accepts any three-segment token and returns its payload's
// claims: it stands in for a real issuer's signature check, which
// TestExternalIssuer covers. What it tests is that groups are read from
// the verified token and reach the policy.
type stubVerifier struct{ now func() time.Time }

func (v stubVerifier) Verify(_ context.Context, raw string) (*token.Claims, error) {
	b, ok := peekPayload(raw)
	if !ok {
		return nil, token.ErrInvalidToken
	}
	var p struct {
		Iss, Sub, ClientID, Jti, Cnf string
	}
	json.Unmarshal(b, &p)
	return &token.Claims{Issuer: p.Iss, Subject: p.Sub, ClientID: "demo-app", JTI: "j-" + p.Sub, JKT: p.Cnf, Expiry: v.now().Add(time.Minute)}, nil
}

func groupsToken(sub, jkt string, groups any) string {
	b, _ := json.Marshal(map[string]any{"iss": groupsIssuer, "sub": sub, "cnf": jkt, "groups": groups})
	return "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(b) + ".sig"
}

func TestGroupsFromToken(t *testing.T) {
	h := newHarness(t, func(x *harness) {
		x.extra = []Issuer{{Issuer: groupsIssuer, Verifier: stubVerifier{now: x.clk.Now}, GroupsClaim: "groups", IgnoreScope: true}}
	})
	k := newKey(t)
	write := func(groups any) result {
		return h.lease(k, map[string]any{"subject_token": groupsToken("gina", jkt(k), groups), "client_id": "demo-app", "scope": "orders:write"})
	}
	r := write([]string{"staff", "ops-team"})
	if r.Status != 200 {
		t.Fatalf("ops-team member: %d %s", r.Status, r.Raw)
	}
	for name, groups := range map[string]any{"no group": []string{"staff"}, "not an array": "ops-team", "absent": nil} {
		t.Run(name, func(t *testing.T) { wantError(t, write(groups), 400, CodeInvalidScope) })
	}
	// Renewal decides with the groups the token carried.
	if r := h.renew(r.Str("renewal_token"), k); r.Status != 200 {
		t.Fatalf("renew: %d %s", r.Status, r.Raw)
	}
}
