package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/token"
)

func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func TestDeviceAuthorizationResponse(t *testing.T) {
	h := newHarness(t, nil)
	d := h.authorize("demo-app", nil)
	if len(d.DeviceCode) < 43 { // 256 bits base64url
		t.Errorf("device_code %q shorter than 256 bits", d.DeviceCode)
	}
	if _, ok := normalizeUserCode(d.UserCode); !ok || len(d.UserCode) != 9 || d.UserCode[4] != '-' {
		t.Errorf("user_code = %q, want XXXX-XXXX of the alphabet", d.UserCode)
	}
	if d.VerificationURI != h.s.Issuer()+"/device" || d.VerificationURIComplete != d.VerificationURI+"?user_code="+d.UserCode {
		t.Errorf("verification URIs = %q, %q", d.VerificationURI, d.VerificationURIComplete)
	}
	if d.Interval != 5 || d.ExpiresIn != 600 {
		t.Errorf("interval, expires_in = %d, %d", d.Interval, d.ExpiresIn)
	}

	tests := map[string]struct {
		form   url.Values
		status int
		code   string
	}{
		"unknown client":        {url.Values{"client_id": {"nope"}}, 401, CodeInvalidClient},
		"no client":             {url.Values{}, 400, CodeInvalidRequest},
		"scope not allowed":     {url.Values{"client_id": {"demo-app"}, "scope": {"admin"}}, 400, CodeInvalidScope},
		"scope near miss":       {url.Values{"client_id": {"demo-app"}, "scope": {"api:READ"}}, 400, CodeInvalidScope},
		"empty scope":           {url.Values{"client_id": {"demo-app"}, "scope": {" "}}, 400, CodeInvalidScope},
		"bad dpop_jkt":          {url.Values{"client_id": {"demo-app"}, "dpop_jkt": {"x"}}, 400, CodeInvalidRequest},
		"secret in body":        {url.Values{"client_id": {"demo-app"}, "client_secret": {"x"}}, 400, CodeInvalidRequest},
		"confidential w/o auth": {url.Values{"client_id": {"rs"}, "scope": {"introspect"}}, 401, CodeInvalidClient},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			wantErr(t, h.post("/device_authorization", tc.form, nil), tc.status, tc.code)
		})
	}
	t.Run("write scope when asked", func(t *testing.T) {
		k := newKey(t)
		d := h.authorize("demo-app", k, "scope", "api:read api:write")
		_ = h.s.Approve(context.Background(), d.UserCode, "alice", "test")
		r := h.poll("demo-app", d.DeviceCode, k)
		if r.str("scope") != "api:read api:write" {
			t.Errorf("scope = %q", r.str("scope"))
		}
	})
}

// docs/security.md#device-flow: "poll twice 1 s apart with interval=5; after
// slow_down, poll again 6 s later" -> slow_down both times; the interval grows by 5 s per
// occurrence.
func TestSlowDownCumulative(t *testing.T) {
	h := newHarness(t, nil)
	k := newKey(t)
	d := h.authorize("demo-app", k)
	steps := []struct {
		after time.Duration
		code  string
	}{
		{0, CodeAuthorizationPending},
		{1 * time.Second, CodeSlowDown},              // interval 5 -> 10
		{6 * time.Second, CodeSlowDown},              // 6 < 10: interval 10 -> 15
		{15 * time.Second, CodeAuthorizationPending}, // waited the full 15
		{14 * time.Second, CodeSlowDown},             // 14 < 15 -> 20
		{20 * time.Second, CodeAuthorizationPending},
	}
	for i, st := range steps {
		h.clk.add(st.after)
		wantErr(t, h.poll("demo-app", d.DeviceCode, k), 400, st.code)
		if t.Failed() {
			t.Fatalf("step %d", i)
		}
	}
}

// docs/security.md#device-flow: device authorization with K1; polling with K2 or without a
// proof -> invalid_grant; tokens only to K1, token_type DPoP.
func TestDeviceCodeBoundToKey(t *testing.T) {
	for _, bindAt := range []string{"device_authorization proof", "dpop_jkt", "first poll"} {
		t.Run(bindAt, func(t *testing.T) {
			h := newHarness(t, nil)
			k1, k2 := newKey(t), newKey(t)
			var d DeviceAuthorization
			switch bindAt {
			case "device_authorization proof":
				d = h.authorize("demo-app", k1)
			case "dpop_jkt":
				d = h.authorize("demo-app", nil, "dpop_jkt", k1.PublicJWK().Thumbprint())
			case "first poll":
				d = h.authorize("demo-app", nil)
				wantErr(t, h.poll("demo-app", d.DeviceCode, k1), 400, CodeAuthorizationPending)
			}
			if err := h.s.Approve(context.Background(), d.UserCode, "alice", "test"); err != nil {
				t.Fatal(err)
			}
			h.clk.add(time.Minute)
			wantErr(t, h.poll("demo-app", d.DeviceCode, k2), 400, CodeInvalidGrant)
			h.clk.add(time.Minute)
			wantErr(t, h.poll("demo-app", d.DeviceCode, nil), 400, CodeInvalidGrant)
			h.clk.add(time.Minute)
			r := h.poll("demo-app", d.DeviceCode, k1)
			if r.status != 200 || r.str("token_type") != "DPoP" {
				t.Fatalf("K1 poll: %d %s", r.status, r.raw)
			}
			if c := jwtClaims(t, r.str("access_token")); c["cnf"].(map[string]any)["jkt"] != k1.PublicJWK().Thumbprint() {
				t.Errorf("cnf = %v, want K1's thumbprint", c["cnf"])
			}
		})
	}
	t.Run("dpop_jkt and proof disagree", func(t *testing.T) {
		h := newHarness(t, nil)
		k1, k2 := newKey(t), newKey(t)
		r := h.post("/device_authorization", url.Values{"client_id": {"demo-app"}, "dpop_jkt": {k2.PublicJWK().Thumbprint()}}, k1)
		wantErr(t, r, 400, CodeInvalidRequest)
	})
	t.Run("unbound code, no proof", func(t *testing.T) {
		h := newHarness(t, nil)
		d := h.authorize("demo-app", nil)
		wantErr(t, h.poll("demo-app", d.DeviceCode, nil), 400, CodeInvalidDPoPProof)
	})
}

func TestAccessTokenShape(t *testing.T) {
	h := newHarness(t, nil)
	k := newKey(t)
	r := h.tokens(k)
	if r.str("token_type") != "DPoP" || r.body["expires_in"].(float64) != 600 || r.str("refresh_token") == "" || r.str("scope") != "api:read" {
		t.Errorf("response = %s", r.raw)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(r.str("access_token"), ".")[0])
	if !strings.Contains(string(hdr), `"typ":"at+jwt"`) {
		t.Errorf("header = %s", hdr)
	}
	c := jwtClaims(t, r.str("access_token"))
	for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "cnf"} {
		if _, ok := c[k]; !ok {
			t.Errorf("claim %s missing: %v", k, c)
		}
	}
	if c["iss"] != h.s.Issuer() || c["sub"] != "alice" || c["client_id"] != "demo-app" {
		t.Errorf("claims = %v", c)
	}
	// And it verifies against the published JWKS.
	v := &token.JWTVerifier{Keys: &token.RemoteJWKS{URL: h.s.Issuer() + "/jwks.json", Client: h.srv.Client(), Now: h.clk.now},
		Issuer: h.s.Issuer(), Audience: h.s.Issuer(), Now: h.clk.now}
	if _, err := v.Verify(context.Background(), r.str("access_token")); err != nil {
		t.Errorf("verify via JWKS: %v", err)
	}
}

// docs/security.md#d13 and the "redeem again; concurrent polls" row.
func TestSingleRedemption(t *testing.T) {
	h := newHarness(t, nil)
	k := newKey(t)
	d := h.authorize("demo-app", k)
	if err := h.s.Approve(context.Background(), d.UserCode, "alice", "test"); err != nil {
		t.Fatal(err)
	}
	const n = 8
	proofs := make([]string, n)
	for i := range proofs {
		proofs[i] = h.proof(k, "/token")
	}
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := url.Values{"grant_type": {GrantDeviceCode}, "client_id": {"demo-app"}, "device_code": {d.DeviceCode}}
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/token", strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("DPoP", proofs[i])
			results[i] = h.do(req)
		}()
	}
	wg.Wait()
	ok := 0
	var rt string
	for _, r := range results {
		if r.status == 200 {
			ok++
			rt = r.str("refresh_token")
		} else if r.status != 400 {
			t.Errorf("concurrent poll: %d %s", r.status, r.raw)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent polls succeeded, want exactly 1", ok)
	}
	// The losers did not revoke the winner's grant.
	r := h.refresh("demo-app", rt, k)
	if r.status != 200 {
		t.Fatalf("winner's refresh after concurrent polls: %d %s", r.status, r.raw)
	}
	rt = r.str("refresh_token")
	h.clk.add(time.Minute)
	wantErr(t, h.poll("demo-app", d.DeviceCode, k), 400, CodeInvalidGrant)
	// A later reuse revoked what the code produced.
	h.clk.add(time.Minute)
	wantErr(t, h.refresh("demo-app", rt, k), 400, CodeInvalidGrant)
}

func TestDeviceGrantErrors(t *testing.T) {
	h := newHarness(t, nil)
	k := newKey(t)
	t.Run("other client", func(t *testing.T) {
		d := h.authorize("demo-app", k)
		_ = h.s.Approve(context.Background(), d.UserCode, "alice", "test")
		wantErr(t, h.poll("other-app", d.DeviceCode, k), 400, CodeInvalidGrant)
		h.clk.add(time.Minute)
		if r := h.poll("demo-app", d.DeviceCode, k); r.status != 200 { // still redeemable by its client
			t.Errorf("own client after mismatch: %d %s", r.status, r.raw)
		}
	})
	t.Run("guessed code", func(t *testing.T) {
		wantErr(t, h.poll("demo-app", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", k), 400, CodeInvalidGrant)
	})
	t.Run("denied", func(t *testing.T) {
		d := h.authorize("demo-app", k)
		if err := h.s.Deny(context.Background(), d.UserCode, "", "test"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, h.poll("demo-app", d.DeviceCode, k), 400, CodeAccessDenied)
	})
	t.Run("expired", func(t *testing.T) {
		d := h.authorize("demo-app", k)
		h.clk.add(10 * time.Minute)
		wantErr(t, h.poll("demo-app", d.DeviceCode, k), 400, CodeExpiredToken)
		if err := h.s.Approve(context.Background(), d.UserCode, "alice", "test"); err != ErrUnknownUserCode {
			t.Errorf("approve expired: %v", err)
		}
	})
	t.Run("missing device_code", func(t *testing.T) {
		wantErr(t, h.post("/token", url.Values{"grant_type": {GrantDeviceCode}, "client_id": {"demo-app"}}, k), 400, CodeInvalidRequest)
	})
	t.Run("unknown-code polls are rate limited", func(t *testing.T) {
		h := newHarness(t, nil)
		var last result
		for range 25 {
			last = h.poll("demo-app", "guess-"+strings.Repeat("x", 40), k)
		}
		if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
			t.Errorf("25th unknown-code poll: %d %v", last.status, last.header)
		}
	})
}

func TestApproveRules(t *testing.T) {
	h := newHarness(t, nil)
	d := h.authorize("demo-app", nil)
	if err := h.s.Approve(context.Background(), d.UserCode, "mallory", "test"); err != ErrUnknownUser {
		t.Errorf("unknown user: %v", err)
	}
	if err := h.s.Approve(context.Background(), strings.ToLower(d.UserCode), "alice", "test"); err != nil {
		t.Errorf("lowercase code: %v", err)
	}
	if err := h.s.Deny(context.Background(), d.UserCode, "", "test"); err != ErrAlreadyDecided {
		t.Errorf("deny after approve: %v", err)
	}
}

func TestDPoPAtTokenEndpoint(t *testing.T) {
	h := newHarness(t, nil)
	k := newKey(t)
	d := h.authorize("demo-app", k)
	form := url.Values{"grant_type": {GrantDeviceCode}, "client_id": {"demo-app"}, "device_code": {d.DeviceCode}}
	p := h.proof(k, "/token")
	wrongHTU, _ := dpop.NewProof(k, "POST", "http://evil.example/token", dpop.ProofOptions{Now: h.clk.now()})
	wrongHTM, _ := dpop.NewProof(k, "GET", h.s.Issuer()+"/token", dpop.ProofOptions{Now: h.clk.now()})
	old, _ := dpop.NewProof(k, "POST", h.s.Issuer()+"/token", dpop.ProofOptions{Now: h.clk.now().Add(-2 * time.Minute)})
	tests := map[string]struct {
		hdr  []string
		code string
	}{
		"two DPoP headers":  {[]string{"DPoP", p, "DPoP", p}, CodeInvalidDPoPProof},
		"comma list":        {[]string{"DPoP", p + ", " + p}, CodeInvalidDPoPProof},
		"not a JWS":         {[]string{"DPoP", "a.b"}, CodeInvalidDPoPProof},
		"htu from Host":     {[]string{"DPoP", wrongHTU}, CodeInvalidDPoPProof},
		"htm GET":           {[]string{"DPoP", wrongHTM}, CodeInvalidDPoPProof},
		"iat too old":       {[]string{"DPoP", old}, CodeInvalidDPoPProof},
		"valid":             {[]string{"DPoP", p}, CodeAuthorizationPending},
		"replayed proof":    {[]string{"DPoP", p}, CodeInvalidDPoPProof},
		"oversized 1MB":     {[]string{"DPoP", strings.Repeat("a", 1<<20)}, CodeInvalidDPoPProof},
		"empty DPoP header": {[]string{"DPoP", ""}, CodeInvalidDPoPProof},
	}
	for _, name := range []string{"two DPoP headers", "comma list", "not a JWS", "htu from Host", "htm GET", "iat too old", "valid", "replayed proof", "oversized 1MB", "empty DPoP header"} {
		tc := tests[name]
		t.Run(name, func(t *testing.T) {
			wantErr(t, h.post("/token", form, nil, tc.hdr...), 400, tc.code)
		})
	}
}

type fakeNonce struct{ cur string }

func (f *fakeNonce) Nonce() (string, error) { return f.cur, nil }
func (f *fakeNonce) CheckNonce(n string) error {
	if n != f.cur {
		return errStale
	}
	return nil
}

var errStale = &Error{Code: "stale"}

func TestNonceMode(t *testing.T) {
	n := &fakeNonce{cur: "n-1"}
	h := newHarness(t, func(o *Options) { o.Nonce = n })
	k := newKey(t)
	d := h.authorize("demo-app", nil)
	r := h.poll("demo-app", d.DeviceCode, k)
	wantErr(t, r, 400, CodeUseDPoPNonce)
	if got := r.header.Values("DPoP-Nonce"); len(got) != 1 || got[0] != "n-1" {
		t.Errorf("DPoP-Nonce = %v", got)
	}
	p, _ := dpop.NewProof(k, "POST", h.s.Issuer()+"/token", dpop.ProofOptions{Now: h.clk.now(), Nonce: "n-1"})
	r = h.post("/token", url.Values{"grant_type": {GrantDeviceCode}, "client_id": {"demo-app"}, "device_code": {d.DeviceCode}}, nil, "DPoP", p)
	wantErr(t, r, 400, CodeAuthorizationPending)
}

func TestRegisterGrantSeam(t *testing.T) {
	h := newHarness(t, nil)
	var got *TokenRequest
	h.s.RegisterGrant(GrantTokenExchange, GrantFunc(func(_ context.Context, req *TokenRequest) (*TokenResponse, error) {
		got = req
		return &TokenResponse{AccessToken: "x", TokenType: "DPoP", IssuedTokenType: "urn:ietf:params:oauth:token-type:access_token", ExpiresIn: 60}, nil
	}))
	k := newKey(t)
	r := h.post("/token", url.Values{"grant_type": {GrantTokenExchange}, "client_id": {"demo-app"}, "subject_token": {"s"}}, k)
	if r.status != 200 || got == nil || got.Proof == nil || got.Proof.JKT != k.PublicJWK().Thumbprint() || got.Form.Get("subject_token") != "s" {
		t.Fatalf("token exchange seam: %d %s, req %+v", r.status, r.raw, got)
	}
	m := h.get("/.well-known/oauth-authorization-server")
	if !strings.Contains(m.raw, GrantTokenExchange) {
		t.Errorf("metadata lacks the registered grant: %s", m.raw)
	}
}
