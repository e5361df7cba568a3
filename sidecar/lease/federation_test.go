package lease

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/federation"
	"github.com/keyless-dev/keyless/sidecar/proxy/check"
	"github.com/keyless-dev/keyless/sidecar/store"
)

// fedHarness is the vending service with three external issuers beside
// the embedded one: corp (Dex-shaped ID tokens, group_map, required
// email_verified), entra (Entra ID v1-shaped access tokens: client in
// appid, subject oid, tenant required) and partner (another IdP whose
// users have the same sub values as corp's).
type fedHarness struct {
	*harness
	clk                  *clock
	corp, entra, partner *idp
}

func newFedHarness(t *testing.T) *fedHarness {
	t.Helper()
	clk := &clock{T: time.Unix(1_800_000_000, 0)}
	f := &fedHarness{clk: clk, corp: newIdP(t, clk), entra: newIdP(t, clk), partner: newIdP(t, clk)}
	f.harness = newHarness(t, func(h *harness) {
		h.clk = clk
		h.extra = []Issuer{
			extIssuer(t, f.corp, "corp", IssuerConfig{Config: federation.Config{
				Audience: federation.StringList{"keyless", "demo-app"}, GroupsClaim: "groups",
				GroupMap:       map[string]federation.StringList{"ops-team": {"ops"}},
				RequiredClaims: map[string]any{"email_verified": true}}}),
			extIssuer(t, f.entra, "entra", IssuerConfig{IgnoreScope: true, Config: federation.Config{
				ClientClaim: "appid", SubjectClaim: "oid", RequiredClaims: map[string]any{"tid": "tenant-1"}}}),
			extIssuer(t, f.partner, "partner", IssuerConfig{}),
		}
	})
	return f
}

// entraToken is an Entra ID v1 access token's shape: single aud, appid,
// oid, tid, scp, no typ.
func (f *fedHarness) entraToken(t *testing.T, oid, appid string, change map[string]any) string {
	now := f.clk.Now()
	return f.entra.sign(t, with(map[string]any{"iss": f.entra.issuer, "sub": "pairwise-" + oid, "oid": oid,
		"aud": "keyless", "appid": appid, "tid": "tenant-1", "scp": "orders.read", "ver": "1.0",
		"exp": now.Add(time.Hour).Unix(), "nbf": now.Unix(), "iat": now.Unix()}, change), nil)
}

// leasesMinted counts the leases the service has recorded and the
// lease.issue audit lines: both must stay put on a refusal.
func (f *fedHarness) leasesMinted(t *testing.T) (int, int) {
	t.Helper()
	all, err := f.svc.ListActive(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	return len(all), strings.Count(f.auditLog(), `"event":"lease.issue"`)
}

// TestExternalNegative is the table of subject tokens that must never
// mint a lease: each row asserts the answer (status, the one pinned
// error code for subject-token refusals, a description that says what is
// wrong) and that nothing was minted.
func TestExternalNegative(t *testing.T) {
	f := newFedHarness(t)
	k1, k2 := newKey(t), newKey(t)
	c := f.corp
	der, _ := x509.MarshalPKIXPublicKey(c.rsa.Public())
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hs256 := func(claims map[string]any) string {
		input := b64u([]byte(`{"alg":"HS256","kid":"rsa-1"}`)) + "." + b64u(mustJSONBytes(claims))
		s, _ := jws.NewSigner(jwa.HS256)
		sig, _ := s.Sign([]byte(input), rsaPEM)
		return input + "." + b64u(sig)
	}
	none := func(claims map[string]any) string {
		return b64u([]byte(`{"alg":"none"}`)) + "." + b64u(mustJSONBytes(claims)) + "."
	}
	forged := func() string {
		parts := strings.Split(c.token(t, "erin", "demo-app", nil), ".")
		return parts[0] + "." + b64u(mustJSONBytes(with(c.claims("erin", "demo-app"), map[string]any{"sub": "root"}))) + "." + parts[2]
	}
	// Warm the corp and entra key caches, and move past the refresh rate
	// limit, so "unknown kid" gets a definite answer.
	for _, tok := range []string{c.token(t, "warm", "demo-app", nil), f.entraToken(t, "warm", "demo-app", nil)} {
		if r := f.lease(newKey(t), map[string]any{"subject_token": tok, "client_id": "demo-app"}); r.Status != 200 {
			t.Fatalf("warm-up: %d %s", r.Status, r.Raw)
		}
	}
	f.clk.Add(federation.DefaultMinRefresh)

	bearer := c.token(t, "erin", "demo-app", nil)
	if r := f.lease(k1, map[string]any{"subject_token": bearer, "client_id": "demo-app"}); r.Status != 200 {
		t.Fatalf("first use of the bearer token: %d %s", r.Status, r.Raw)
	}

	type row struct {
		name   string
		key    dpop.Signer
		tok    func() string
		scope  string
		status int
		code   string
		desc   string // substring of error_description
		typ    string // subject_token_type, if any
	}
	rows := []row{
		{name: "wrong audience", tok: func() string {
			return c.token(t, "erin", "demo-app", map[string]any{"aud": []string{"other-app", "grafana"}, "azp": "other-app"})
		}, status: 400, code: CodeInvalidGrant, desc: "audience does not include keyless or demo-app"},
		{name: "another client (azp)", tok: func() string { return c.token(t, "erin", "evil-app", nil) },
			status: 400, code: CodeInvalidGrant, desc: "issued to another client"},
		{name: "another client (Entra appid)", tok: func() string { return f.entraToken(t, "oid-1", "evil-app", nil) },
			status: 400, code: CodeInvalidGrant, desc: "issued to another client"},
		{name: "ID token with several audiences and no azp", tok: func() string {
			return c.token(t, "erin", "demo-app", map[string]any{"azp": nil})
		}, typ: TokenTypeIDToken, status: 400, code: CodeInvalidGrant, desc: "several audiences and no azp"},
		{name: "expired", tok: func() string {
			return c.token(t, "erin", "demo-app", map[string]any{"exp": f.clk.Now().Add(-5 * time.Minute).Unix()})
		}, status: 400, code: CodeInvalidGrant, desc: "expired"},
		{name: "nbf in the future", tok: func() string {
			return c.token(t, "erin", "demo-app", map[string]any{"nbf": f.clk.Now().Add(5 * time.Minute).Unix()})
		}, status: 400, code: CodeInvalidGrant, desc: "not valid yet"},
		{name: "untrusted issuer", tok: func() string {
			return c.token(t, "erin", "demo-app", map[string]any{"iss": "https://evil.example.test"})
		}, status: 400, code: CodeInvalidGrant, desc: "issuer is not trusted"},
		{name: "forged signature", tok: forged, status: 400, code: CodeInvalidGrant, desc: "signature does not verify"},
		{name: "alg none", tok: func() string { return none(c.claims("erin", "demo-app")) },
			status: 400, code: CodeInvalidGrant, desc: "signed with none, which issuer corp does not allow"},
		{name: "HS256 keyed with the RSA public key", tok: func() string { return hs256(c.claims("erin", "demo-app")) },
			status: 400, code: CodeInvalidGrant, desc: "signed with HS256, which issuer corp does not allow"},
		{name: "unknown kid after refresh", tok: func() string {
			return c.sign(t, c.claims("erin", "demo-app"), map[string]any{"kid": "rotated-away"})
		}, status: 400, code: CodeInvalidGrant, desc: "unknown kid"},
		{name: "unknown kid again inside the refresh window", tok: func() string {
			return c.sign(t, c.claims("erin", "demo-app"), map[string]any{"kid": "rotated-away-2"})
		}, status: 503, code: CodeUnavailable, desc: "retry after"},
		{name: "required claim missing", tok: func() string {
			return c.token(t, "erin", "demo-app", map[string]any{"email_verified": nil})
		}, status: 400, code: CodeInvalidGrant, desc: "required claim email_verified"},
		{name: "required claim missing (Entra tid)", tok: func() string {
			return f.entraToken(t, "oid-1", "demo-app", map[string]any{"tid": "other-tenant"})
		}, status: 400, code: CodeInvalidGrant, desc: "required claim tid"},
		{name: "group not mapped", tok: func() string {
			return c.token(t, "erin", "demo-app", map[string]any{"groups": []string{"ops", "Ops-Team", "staff"}})
		}, scope: "orders:write", status: 400, code: CodeInvalidScope, desc: "above what the policy grants"},
		{name: "bearer subject token reused for another key", key: k2, tok: func() string { return bearer },
			status: 400, code: CodeInvalidGrant, desc: "already exchanged"},
		{name: "bearer subject token reused for the same key", key: k1, tok: func() string { return bearer },
			status: 400, code: CodeInvalidGrant, desc: "already exchanged"},
		{name: "DPoP-bound subject token with another key's proof", key: k2, tok: func() string {
			return c.token(t, "erin", "demo-app", map[string]any{"cnf": map[string]string{"jkt": jkt(k1)}})
		}, status: 401, code: CodeInvalidToken, desc: "bound to another DPoP key"},
		{name: "access token (typ at+jwt) declared as an ID token", tok: func() string {
			return c.sign(t, c.claims("erin", "demo-app"), map[string]any{"typ": "at+jwt"})
		}, typ: TokenTypeIDToken, status: 400, code: CodeInvalidGrant, desc: "cannot be used as id_token"},
		{name: "IdP down", tok: func() string {
			f.partner.down.Store(true)
			return f.partner.token(t, "erin", "demo-app", nil)
		}, status: 503, code: CodeUnavailable, desc: "temporarily unavailable"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			key := r.key
			if key == nil {
				key = k1
			}
			body := map[string]any{"subject_token": r.tok(), "client_id": "demo-app"}
			if r.scope != "" {
				body["scope"] = r.scope
			}
			if r.typ != "" {
				body["subject_token_type"] = r.typ
			}
			leases, issued := f.leasesMinted(t)
			res := f.lease(key, body)
			wantError(t, res, r.status, r.code)
			if d := res.Str("error_description"); !strings.Contains(d, r.desc) {
				t.Errorf("error_description = %q, want it to say %q", d, r.desc)
			}
			if r.status == 503 {
				if ra := res.Header.Get("Retry-After"); ra == "" || ra == "0" {
					t.Errorf("Retry-After = %q", ra)
				}
			}
			if l, i := f.leasesMinted(t); l != leases || i != issued {
				t.Errorf("a lease was minted: leases %d -> %d, issue lines %d -> %d", leases, l, issued, i)
			}
		})
	}
	// The audit lines name the issuer and the failing check, and never
	// hold a token.
	log := f.auditLog()
	for _, want := range []string{`"issuer":"corp","check":"aud"`, `"check":"alg"`, `"check":"kid"`, `"check":"reuse"`, `"check":"cnf"`, `"issuer":"entra","check":"client"`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	if strings.Contains(log, bearer) || strings.Contains(log, strings.Split(bearer, ".")[1]) {
		t.Error("audit log holds a subject token")
	}
}

// TestIssuersNamespaceSubjects: the same sub at two issuers (and a local
// user of that name) gets different leases, rules and identity headers,
// and revoking one does not touch the others.
func TestIssuersNamespaceSubjects(t *testing.T) {
	f := newFedHarness(t)
	kc, kp, kl := newKey(t), newKey(t), newKey(t)
	ask := func(k dpop.Signer, tok, scope string) result {
		return f.lease(k, map[string]any{"subject_token": tok, "client_id": "demo-app", "scope": scope})
	}
	// corp's alice is in ops-team (rule corp-ops: write).
	rc := ask(kc, f.corp.token(t, "alice", "demo-app", nil), "orders:write")
	if rc.Status != 200 {
		t.Fatalf("corp alice: %d %s", rc.Status, rc.Raw)
	}
	// partner's alice has only partner-read: no write, whatever the
	// token's groups, and never the local alice's rule ops-write.
	wantError(t, ask(kp, f.partner.token(t, "alice", "demo-app", nil), "orders:write"), 400, CodeInvalidScope)
	rp := ask(kp, f.partner.token(t, "alice", "demo-app", nil), "orders:read")
	if rp.Status != 200 {
		t.Fatalf("partner alice: %d %s", rp.Status, rp.Raw)
	}
	// The local alice gets ops-write, admin included; the external ones
	// never do.
	rl := ask(kl, f.login("alice", "demo-app", readWrite, kl), "admin")
	if rl.Status != 200 {
		t.Fatalf("local alice: %d %s", rl.Status, rl.Raw)
	}
	wantError(t, ask(kc, f.corp.token(t, "alice", "demo-app", nil), "admin"), 400, CodeInvalidScope)

	hdrs := check.Headers{Subject: "X-Keyless-Sub", Client: "X-Keyless-Client", Scope: "X-Keyless-Scope", Lease: "X-Keyless-Lease", Issuer: "X-Keyless-Issuer"}
	headers := func(r result) map[string]string {
		c := f.verifyLease(r.Str("access_token"), apiAud)
		m := map[string]string{}
		for _, kv := range check.Identity(hdrs, c) {
			m[kv[0]] = kv[1]
		}
		return m
	}
	hc, hp, hl := headers(rc), headers(rp), headers(rl)
	if hc["X-Keyless-Sub"] != "alice" || hc["X-Keyless-Issuer"] != "corp" || hc["X-Keyless-Scope"] != "orders:write" {
		t.Errorf("corp headers = %v", hc)
	}
	if hp["X-Keyless-Sub"] != "alice" || hp["X-Keyless-Issuer"] != "partner" || hp["X-Keyless-Scope"] != "orders:read" {
		t.Errorf("partner headers = %v", hp)
	}
	if hl["X-Keyless-Sub"] != "alice" || hl["X-Keyless-Issuer"] != "" {
		t.Errorf("local headers = %v", hl)
	}
	if hc["X-Keyless-Lease"] == hp["X-Keyless-Lease"] || hp["X-Keyless-Lease"] == hl["X-Keyless-Lease"] {
		t.Error("leases share an id")
	}

	// keyless revoke --sub alice --issuer corp: only corp's alice.
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+PathAdmin, strings.NewReader(`{"kind":"sub","value":"alice","issuer":"corp"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer admin-secret")
	if r := f.do(req); r.Status != 200 {
		t.Fatalf("admin revoke: %d %s", r.Status, r.Raw)
	}
	revoked := func(idp string) bool {
		ok, err := f.db.AnyRevoked(context.Background(), store.Revocation{Kind: store.KindSub, Value: store.SubjectValue(idp, "alice")})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !revoked("corp") || revoked("partner") || revoked("") {
		t.Errorf("revoked: corp %v partner %v local %v; want only corp", revoked("corp"), revoked("partner"), revoked(""))
	}
	wantError(t, ask(kc, f.corp.token(t, "alice", "demo-app", nil), "orders:read"), 400, CodeInvalidGrant)
	if r := ask(kp, f.partner.token(t, "alice", "demo-app", nil), "orders:read"); r.Status != 200 {
		t.Errorf("partner alice after corp's revocation: %d %s", r.Status, r.Raw)
	}
	// An unknown issuer name is refused, not silently applied to nobody.
	req, _ = http.NewRequest(http.MethodPost, f.srv.URL+PathAdmin, strings.NewReader(`{"kind":"sub","value":"alice","issuer":"nope"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer admin-secret")
	wantError(t, f.do(req), 400, CodeInvalidRequest)
}

// TestExternalLifetime: a lease never outlives the external token it
// came from, and its family renews only until the token's exp (or
// renew_past_token past it).
func TestExternalLifetime(t *testing.T) {
	f := newFedHarness(t)
	k := newKey(t)
	ask := func(tok string) result {
		return f.lease(k, map[string]any{"subject_token": tok, "client_id": "demo-app", "ttl": 900})
	}
	exp := func(d time.Duration) map[string]any {
		return map[string]any{"exp": f.clk.Now().Add(d).Unix(), "cnf": map[string]string{"jkt": jkt(k)}}
	}

	// A token with 4 minutes left: a 4-minute lease, nothing to renew.
	r := ask(f.partner.token(t, "erin", "demo-app", exp(4*time.Minute)))
	if r.Status != 200 {
		t.Fatalf("lease: %d %s", r.Status, r.Raw)
	}
	if r.Body["expires_in"] != float64(240) || r.Str("renewal_token") != "" {
		t.Errorf("expires_in = %v, renewal_token %q; want 240 and none", r.Body["expires_in"], r.Str("renewal_token"))
	}
	c := f.verifyLease(r.Str("access_token"), apiAud)
	if c.Expiry.After(f.clk.Now().Add(4 * time.Minute)) {
		t.Errorf("lease exp %v is after the token's", c.Expiry)
	}

	// A token with 20 minutes left: a 15-minute lease (the cap), renewal
	// until the token's exp, then no further.
	r = ask(f.partner.token(t, "erin", "demo-app", exp(20*time.Minute)))
	if r.Status != 200 || r.Body["expires_in"] != float64(900) || r.Str("renewal_token") == "" {
		t.Fatalf("lease: %d %s", r.Status, r.Raw)
	}
	f.clk.Add(14 * time.Minute)
	r = f.renew(r.Str("renewal_token"), k)
	if r.Status != 200 || r.Body["expires_in"] != float64(360) {
		t.Fatalf("renew: %d %s; want expires_in 360 (the token's exp)", r.Status, r.Raw)
	}
	f.clk.Add(6 * time.Minute)
	wantError(t, f.renew(r.Str("renewal_token"), k), 400, CodeInvalidGrant)
}

// TestRenewPastToken: with renew_past_token the family outlives the
// token by that much, no more.
func TestRenewPastToken(t *testing.T) {
	clk := &clock{T: time.Unix(1_800_000_000, 0)}
	ext := newIdP(t, clk)
	h := newHarness(t, func(h *harness) {
		h.clk = clk
		h.extra = []Issuer{extIssuer(t, ext, "partner", IssuerConfig{RenewPastToken: federation.Duration(30 * time.Minute)})}
	})
	k := newKey(t)
	tok := ext.token(t, "erin", "demo-app", map[string]any{"exp": clk.Now().Add(10 * time.Minute).Unix(), "cnf": map[string]string{"jkt": jkt(k)}})
	r := h.lease(k, map[string]any{"subject_token": tok, "client_id": "demo-app"})
	if r.Status != 200 || r.Body["expires_in"] != float64(600) || r.Str("renewal_token") == "" {
		t.Fatalf("lease: %d %s", r.Status, r.Raw)
	}
	clk.Add(20 * time.Minute) // past the token's exp, inside renew_past_token
	r = h.renew(r.Str("renewal_token"), k)
	if r.Status != 200 || r.Body["expires_in"] != float64(900) {
		t.Fatalf("renew past the token: %d %s", r.Status, r.Raw)
	}
	clk.Add(15 * time.Minute) // 5 minutes left of the 40
	r = h.renew(r.Str("renewal_token"), k)
	if r.Status != 200 || r.Body["expires_in"] != float64(300) {
		t.Fatalf("renew near the limit: %d %s", r.Status, r.Raw)
	}
	clk.Add(5 * time.Minute)
	wantError(t, h.renew(r.Str("renewal_token"), k), 400, CodeInvalidGrant)
}

func mustJSONBytes(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
