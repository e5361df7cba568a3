package lease

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store"
)

// deviceLogin signs alice in to demo-app through the real device flow of
// the harness's authorization server and returns the token response: a
// login family with its access and refresh tokens.
func (h *harness) deviceLogin(k dpop.Signer) result {
	h.t.Helper()
	da := h.postForm("/device_authorization", url.Values{"client_id": {"demo-app"}, "scope": {"orders:read orders:write"}}, k)
	if da.Status != 200 {
		h.t.Fatalf("device authorization: %d %s", da.Status, da.Raw)
	}
	if err := h.as.Approve(context.Background(), da.Str("user_code"), "alice", "test"); err != nil {
		h.t.Fatal(err)
	}
	tok := h.postForm("/token", url.Values{"client_id": {"demo-app"}, "grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da.Str("device_code")}}, k)
	if tok.Status != 200 {
		h.t.Fatalf("device code grant: %d %s", tok.Status, tok.Raw)
	}
	return tok
}

// TestLoginRevocationEndsLeaseFamilies: a lease family records the login
// it came from, so revoking the login at any time (here 11 minutes after
// sign-in, when the login's access token has expired and its jti is no
// longer remembered) ends the lease families minted from it: renewal is
// refused and the current lease is revoked at the proxies.
func TestLoginRevocationEndsLeaseFamilies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		revoke func(h *harness, login result, k dpop.Signer)
	}{
		{"RFC 7009 of the refresh token", func(h *harness, login result, k dpop.Signer) {
			if r := h.postForm("/revoke", url.Values{"token": {login.Str("refresh_token")}, "client_id": {"demo-app"}}, k); r.Status != 200 {
				h.t.Fatalf("revoke: %d %s", r.Status, r.Raw)
			}
		}},
		{"refresh-token reuse", func(h *harness, login result, k dpop.Signer) {
			refresh := func() result {
				return h.postForm("/token", url.Values{"client_id": {"demo-app"}, "grant_type": {"refresh_token"}, "refresh_token": {login.Str("refresh_token")}}, k)
			}
			if r := refresh(); r.Status != 200 {
				h.t.Fatalf("refresh: %d %s", r.Status, r.Raw)
			}
			wantError(h.t, refresh(), 400, CodeInvalidGrant) // reuse: the login is revoked
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			k := newKey(t)
			login := h.deviceLogin(k)
			r0 := h.lease(k, map[string]any{"subject_token": login.Str("access_token"), "client_id": "demo-app"})
			if r0.Status != 200 {
				t.Fatalf("lease: %d %s", r0.Status, r0.Raw)
			}
			// Renewal works while the login stands, past the login
			// token's own lifetime.
			h.clk.Add(11 * time.Minute)
			r1 := h.renew(r0.Str("renewal_token"), k)
			if r1.Status != 200 {
				t.Fatalf("renew before the login is revoked: %d %s", r1.Status, r1.Raw)
			}
			tc.revoke(h, login, k)
			wantError(t, h.renew(r1.Str("renewal_token"), k), 400, CodeInvalidGrant)
			if !h.leaseRevoked(r0.Str("lease_id")) {
				t.Error("the lease minted from the revoked login is still valid at the proxy")
			}
			// Still refused once every revocation entry of the login
			// lapsed: renewal asks the login's durable record.
			h.clk.Add(2 * time.Hour)
			wantError(t, h.renew(r1.Str("renewal_token"), k), 400, CodeInvalidGrant)
			revoked, err := h.db.AnyRevoked(context.Background(), store.Revocation{Kind: store.KindLease, Value: r0.Str("lease_id")})
			if err != nil || !revoked {
				t.Errorf("lease revocation not final: %v %v", revoked, err)
			}
		})
	}
}
