package authserver

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store"
)

func (h *harness) introspect(tok string) result {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rs", "rs-secret")
	return h.do(req)
}

// revoke is an RFC 7009 request; k, when set, proves a key.
func (h *harness) revoke(client, tok, hint string, k dpop.Signer) result {
	h.t.Helper()
	f := url.Values{"client_id": {client}, "token": {tok}}
	if hint != "" {
		f.Set("token_type_hint", hint)
	}
	return h.post("/revoke", f, k)
}

func active(t *testing.T, r result) bool {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("introspect: %d %s", r.Status, r.Raw)
	}
	a, _ := r.Body["active"].(bool)
	return a
}

func TestRefreshRotation(t *testing.T) {
	h := newHarness(t, nil)
	k, k2 := newKey(t), newKey(t)
	r0 := h.tokens(k)
	rt1 := r0.Str("refresh_token")

	wantErr(t, h.refresh("demo-app", rt1, nil), 400, CodeInvalidDPoPProof)
	wantErr(t, h.refresh("demo-app", rt1, k2), 400, CodeInvalidGrant) // bound to k
	wantErr(t, h.refresh("other-app", rt1, k), 400, CodeInvalidGrant)
	wantErr(t, h.refresh("demo-app", "garbage", k), 400, CodeInvalidGrant)
	wantErr(t, h.post("/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}, "refresh_token": {rt1}, "scope": {"api:write"}}, k), 400, CodeInvalidScope)

	r1 := h.refresh("demo-app", rt1, k)
	if r1.Status != 200 || r1.Str("token_type") != "DPoP" || r1.Str("refresh_token") == rt1 || r1.Str("refresh_token") == "" {
		t.Fatalf("refresh: %d %s", r1.Status, r1.Raw)
	}
	if c := jwtClaims(t, r1.Str("access_token")); c["cnf"].(map[string]any)["jkt"] != k.PublicJWK().Thumbprint() {
		t.Errorf("refreshed token cnf = %v", c["cnf"])
	}
	rt2 := r1.Str("refresh_token")
	r2 := h.refresh("demo-app", rt2, k)
	if r2.Status != 200 {
		t.Fatalf("second refresh: %d %s", r2.Status, r2.Raw)
	}
	if !active(t, h.introspect(r2.Str("refresh_token"))) || active(t, h.introspect(rt2)) {
		t.Error("introspection of current/used refresh token wrong")
	}

	// docs/security.md#device-flow: reuse of an old refresh token revokes the whole family,
	// the access tokens of the grant included.
	wantErr(t, h.refresh("demo-app", rt1, k), 400, CodeInvalidGrant)
	wantErr(t, h.refresh("demo-app", r2.Str("refresh_token"), k), 400, CodeInvalidGrant)
	for i, at := range []string{r0.Str("access_token"), r1.Str("access_token"), r2.Str("access_token")} {
		if active(t, h.introspect(at)) {
			t.Errorf("access token %d still active after family revocation", i)
		}
	}
	if !strings.Contains(h.auditText(), `"reason":"refresh_token_reuse"`) {
		t.Error("reuse not audited")
	}
}

func TestRefreshAbsoluteLifetime(t *testing.T) {
	h := newHarness(t, nil)
	k := newKey(t)
	rt := h.tokens(k).Str("refresh_token")
	for range 3 { // rotation does not extend the family
		h.clk.Add(7 * time.Hour)
		r := h.refresh("demo-app", rt, k)
		if r.Status != 200 {
			t.Fatalf("refresh: %d %s", r.Status, r.Raw)
		}
		rt = r.Str("refresh_token")
	}
	h.clk.Add(4 * time.Hour) // 25 h after the grant
	wantErr(t, h.refresh("demo-app", rt, k), 400, CodeInvalidGrant)
}

// docs/security.md#d5 and the RFC 7009 revocation rules.
func TestRevocation(t *testing.T) {
	h := newHarness(t, nil)
	k := newKey(t)
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"unknown token -> 200", func(t *testing.T) {
			for _, tok := range []string{"garbage", "a.b.c", strings.Repeat("x", 500)} {
				if r := h.revoke("demo-app", tok, "", nil); r.Status != 200 || r.Raw != "" {
					t.Errorf("%q: %d %q", tok[:min(10, len(tok))], r.Status, r.Raw)
				}
			}
		}},
		{"other client's refresh token -> 400 unauthorized_client, stays valid", func(t *testing.T) {
			r := h.tokens(k)
			wantErr(t, h.revoke("other-app", r.Str("refresh_token"), "", k), 400, CodeUnauthorizedClient)
			wantErr(t, h.revoke("other-app", r.Str("access_token"), "", k), 400, CodeUnauthorizedClient)
			if !active(t, h.introspect(r.Str("access_token"))) {
				t.Error("access token revoked by another client")
			}
			if rr := h.refresh("demo-app", r.Str("refresh_token"), k); rr.Status != 200 {
				t.Errorf("refresh after foreign revoke: %d", rr.Status)
			}
		}},
		{"wrong hint still revokes; ATs of the grant too", func(t *testing.T) {
			r := h.tokens(k)
			if rr := h.revoke("demo-app", r.Str("refresh_token"), "access_token", k); rr.Status != 200 {
				t.Fatalf("revoke: %d %s", rr.Status, rr.Raw)
			}
			wantErr(t, h.refresh("demo-app", r.Str("refresh_token"), k), 400, CodeInvalidGrant)
			if active(t, h.introspect(r.Str("access_token"))) {
				t.Error("access token of a revoked grant still active")
			}
			if rr := h.revoke("demo-app", r.Str("refresh_token"), "", k); rr.Status != 200 {
				t.Errorf("already revoked: %d", rr.Status)
			}
		}},
		{"access token with refresh_token hint", func(t *testing.T) {
			r := h.tokens(k)
			if rr := h.revoke("demo-app", r.Str("access_token"), "refresh_token", k); rr.Status != 200 {
				t.Fatalf("revoke: %d", rr.Status)
			}
			if active(t, h.introspect(r.Str("access_token"))) {
				t.Error("revoked access token still active")
			}
			if rv, _ := h.s.revocations.AnyRevoked(context.Background(), store.Revocation{Kind: store.KindJTI, Value: jwtClaims(t, r.Str("access_token"))["jti"].(string)}); !rv {
				t.Error("jti not in the revocation store (the vending service checks it)")
			}
		}},
		{"DPoP-bound tokens without a proof, or with another key's -> 400 invalid_dpop_proof, stay valid", func(t *testing.T) {
			r := h.tokens(k)
			other := newKey(t)
			for _, signer := range []dpop.Signer{nil, other} {
				wantErr(t, h.revoke("demo-app", r.Str("refresh_token"), "", signer), 400, CodeInvalidDPoPProof)
				wantErr(t, h.revoke("demo-app", r.Str("access_token"), "", signer), 400, CodeInvalidDPoPProof)
			}
			if !active(t, h.introspect(r.Str("access_token"))) {
				t.Error("access token revoked without a proof of its key")
			}
			if rr := h.refresh("demo-app", r.Str("refresh_token"), k); rr.Status != 200 {
				t.Errorf("refresh after a refused revoke: %d %s", rr.Status, rr.Raw)
			}
		}},
		{"missing token", func(t *testing.T) {
			wantErr(t, h.post("/revoke", url.Values{"client_id": {"demo-app"}}, nil), 400, CodeInvalidRequest)
		}},
		{"unknown client", func(t *testing.T) {
			wantErr(t, h.post("/revoke", url.Values{"client_id": {"x"}, "token": {"t"}}, nil), 401, CodeInvalidClient)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

func TestIntrospectionAuth(t *testing.T) {
	h := newHarness(t, nil)
	r := h.tokens(newKey(t))
	form := url.Values{"token": {r.Str("access_token")}}
	for name, set := range map[string]func(*http.Request){
		"none":           func(*http.Request) {},
		"public client":  func(q *http.Request) { q.SetBasicAuth("demo-app", "") },
		"wrong secret":   func(q *http.Request) { q.SetBasicAuth("rs", "nope") },
		"wrong bearer":   func(q *http.Request) { q.Header.Set("Authorization", "Bearer nope") },
		"unknown client": func(q *http.Request) { q.SetBasicAuth("ghost", "x") },
	} {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/introspect", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		set(req)
		if res := h.do(req); res.Status != 401 || res.Str("error") != CodeInvalidClient {
			t.Errorf("%s: %d %s", name, res.Status, res.Raw)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/introspect", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer admin-secret-token")
	res := h.do(req)
	if !active(t, res) || res.Str("sub") != "alice" || res.Str("token_type") != "DPoP" || res.Body["cnf"] == nil {
		t.Errorf("admin introspection: %s", res.Raw)
	}
	if active(t, h.introspect("nonsense")) {
		t.Error("garbage is active")
	}
}

// Restart persistence: device codes, refresh families, revocations and
// keys survive closing and reopening the data dir.
func TestRestartPersistence(t *testing.T) {
	h := newHarness(t, nil)
	k := newKey(t)
	ctx := context.Background()
	// A pending code approved before the restart, redeemed after.
	pending := h.authorize("demo-app", k)
	if err := h.s.Approve(ctx, pending.UserCode, "alice", "test"); err != nil {
		t.Fatal(err)
	}
	// A grant whose refresh token is used after the restart.
	live := h.tokens(k)
	// A grant revoked before the restart.
	dead := h.tokens(k)
	if r := h.revoke("demo-app", dead.Str("refresh_token"), "", k); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	kid := h.s.Keys().Keys()[0].KID
	oldIssuer := h.s.Issuer()

	h.restart()
	if h.s.Keys().Keys()[0].KID != kid {
		t.Error("signing key changed across restart")
	}
	h.clk.Add(time.Minute)
	// The issuer URL changed with the port; the code and key binding did not.
	if r := h.poll("demo-app", pending.DeviceCode, k); r.Status != 200 {
		t.Errorf("redeem after restart: %d %s", r.Status, r.Raw)
	}
	if r := h.refresh("demo-app", live.Str("refresh_token"), k); r.Status != 200 {
		t.Errorf("refresh after restart: %d %s", r.Status, r.Raw)
	}
	wantErr(t, h.refresh("demo-app", dead.Str("refresh_token"), k), 400, CodeInvalidGrant)
	jti := jwtClaims(t, dead.Str("access_token"))["jti"].(string)
	if rv, err := h.s.revocations.AnyRevoked(ctx, store.Revocation{Kind: store.KindJTI, Value: jti}); err != nil || !rv {
		t.Errorf("revocation lost across restart: %v %v", rv, err)
	}
	_ = oldIssuer
}

func TestBadInput(t *testing.T) {
	h := newHarness(t, nil)
	send := func(method, path, ctype, body string, hdr ...string) result {
		req, _ := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
		return h.do(req)
	}
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name             string
		method, path, ct string
		body             string
		hdr              []string
		status           int
		code             string
	}{
		{"GET /token", "GET", "/token", "", "", nil, 405, CodeInvalidRequest},
		{"PUT /device_authorization", "PUT", "/device_authorization", form, "client_id=demo-app", nil, 405, CodeInvalidRequest},
		{"JSON body", "POST", "/token", "application/json", `{"grant_type":"x"}`, nil, 415, CodeInvalidRequest},
		{"no content type", "POST", "/token", "", "grant_type=x", nil, 415, CodeInvalidRequest},
		{"oversized", "POST", "/token", form, "client_id=demo-app&x=" + strings.Repeat("a", 70<<10), nil, 413, CodeInvalidRequest},
		{"repeated parameter", "POST", "/token", form, "client_id=demo-app&grant_type=refresh_token&grant_type=refresh_token", nil, 400, CodeInvalidRequest},
		{"bad encoding", "POST", "/token", form, "client_id=%zz", nil, 400, CodeInvalidRequest},
		{"no grant_type", "POST", "/token", form, "client_id=demo-app", nil, 400, CodeInvalidRequest},
		{"unsupported grant", "POST", "/token", form, "client_id=demo-app&grant_type=password", nil, 400, CodeUnsupportedGrantType},
		{"authorization_code", "POST", "/token", form, "client_id=demo-app&grant_type=authorization_code", nil, 400, CodeUnsupportedGrantType},
		{"unknown client", "POST", "/token", form, "client_id=ghost&grant_type=refresh_token", nil, 401, CodeInvalidClient},
		{"bearer auth", "POST", "/token", form, "client_id=demo-app&grant_type=refresh_token", []string{"Authorization", "Bearer x"}, 401, CodeInvalidClient},
		{"basic for public client", "POST", "/token", form, "grant_type=refresh_token", []string{"Authorization", "Basic ZGVtby1hcHA6eA=="}, 401, CodeInvalidClient},
		{"query-string credentials ignored", "POST", "/token?client_id=demo-app&grant_type=refresh_token", form, "", nil, 400, CodeInvalidRequest},
		{"GET /revoke", "GET", "/revoke", "", "", nil, 405, CodeInvalidRequest},
		{"GET /introspect", "GET", "/introspect", "", "", nil, 405, CodeInvalidRequest},
		{"POST metadata", "POST", "/.well-known/oauth-authorization-server", form, "", nil, 405, CodeInvalidRequest},
		{"unknown path", "GET", "/nope", "", "", nil, 404, CodeInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := send(tc.method, tc.path, tc.ct, tc.body, tc.hdr...)
			wantErr(t, r, tc.status, tc.code)
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
	t.Run("page wrong method", func(t *testing.T) {
		if r := send("DELETE", "/device", "", ""); r.Status != 405 {
			t.Errorf("DELETE /device: %d", r.Status)
		}
	})
	t.Run("CORS preflight", func(t *testing.T) {
		r := send("OPTIONS", "/token", "", "", "Origin", "https://app.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "dpop")
		if r.Status != 204 || !strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "DPoP") ||
			!strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "DPoP-Nonce") {
			t.Errorf("preflight: %d %v", r.Status, r.Header)
		}
	})
}

func TestDiscovery(t *testing.T) {
	h := newHarness(t, nil)
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		r := h.get(p)
		if r.Status != 200 {
			t.Fatalf("%s: %d", p, r.Status)
		}
		is := h.s.Issuer()
		for k, want := range map[string]string{
			"issuer": is, "token_endpoint": is + "/token", "device_authorization_endpoint": is + "/device_authorization",
			"jwks_uri": is + "/jwks.json", "revocation_endpoint": is + "/revoke", "introspection_endpoint": is + "/introspect",
		} {
			if r.Str(k) != want {
				t.Errorf("%s %s = %q, want %q", p, k, r.Str(k), want)
			}
		}
		if !strings.Contains(r.Raw, `"dpop_signing_alg_values_supported":["ES256"`) || !strings.Contains(r.Raw, GrantDeviceCode) || !strings.Contains(r.Raw, `"refresh_token"`) {
			t.Errorf("%s: %s", p, r.Raw)
		}
	}
	j := h.get("/jwks.json")
	if j.Status != 200 || strings.Contains(j.Raw, `"d"`) || !strings.Contains(j.Raw, `"kid"`) {
		t.Errorf("jwks: %d %s", j.Status, j.Raw)
	}
}

// The audit log has a line per event with client, subject, scope, jti and
// key thumbprint, and never a token, code or password.
func TestAuditNeverLeaksSecrets(t *testing.T) {
	h := newHarness(t, nil)
	k := newKey(t)
	d := h.authorize("demo-app", k)
	cookie, tok, _ := openConsent(t, h, d.UserCode)
	h.pagePost(url.Values{"csrf": {tok}, "user_code": {d.UserCode}, "username": {"alice"}, "password": {testPassword}, "action": {"approve"}}, cookie)
	r := h.poll("demo-app", d.DeviceCode, k)
	r2 := h.refresh("demo-app", r.Str("refresh_token"), k)
	h.revoke("demo-app", r2.Str("refresh_token"), "", k)
	log := h.auditText()
	for _, secret := range []string{d.DeviceCode, r.Str("access_token"), r.Str("refresh_token"), r2.Str("access_token"), r2.Str("refresh_token"), testPassword, tok, cookie.Value} {
		if secret != "" && strings.Contains(log, secret) {
			t.Errorf("audit log contains a secret %q...", secret[:8])
		}
	}
	for _, ev := range []string{"device.authorize", "device.approve", "token.issue", "token.refresh", "token.revoke"} {
		if !strings.Contains(log, `"event":"`+ev+`"`) {
			t.Errorf("audit lacks %s", ev)
		}
	}
	jti := jwtClaims(t, r.Str("access_token"))["jti"].(string)
	if !strings.Contains(log, jti) || !strings.Contains(log, k.PublicJWK().Thumbprint()) {
		t.Error("audit lacks jti or key thumbprint")
	}
}

func (h *harness) auditText() string {
	return h.audit.String()
}

func FuzzNormalizeUserCode(f *testing.F) {
	for _, s := range []string{"BCDF-GHJK", "bcdf ghjk", "BCDF-GHJ", "", "ａ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := normalizeUserCode(s)
		if !ok {
			return
		}
		if len(n) != userCodeLen {
			t.Fatalf("normalized %q to %q", s, n)
		}
		for i := range len(n) {
			if !strings.ContainsRune(userCodeAlphabet, rune(n[i])) {
				t.Fatalf("normalized %q to %q", s, n)
			}
		}
		if n2, ok := normalizeUserCode(formatUserCode(n)); !ok || n2 != n {
			t.Fatalf("round trip %q -> %q", n, n2)
		}
	})
}
