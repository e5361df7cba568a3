package lease

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

var (
	readWrite = []string{"orders:read", "orders:write", "admin"}
	readOnly  = []string{"orders:read"}
)

func TestLeaseIssued(t *testing.T) {
	h := newHarness(t)
	k1 := newKey(t)
	r := h.lease(k1, map[string]any{
		"subject_token": h.login("alice", "demo-app", readWrite, k1), "client_id": "demo-app",
		"scope": "orders:read", "ttl": 60,
	})
	if r.Status != http.StatusOK {
		t.Fatalf("lease: %d %s", r.Status, r.Raw)
	}
	if r.Str("token_type") != "DPoP" || r.Str("issued_token_type") != TokenTypeAccessToken {
		t.Errorf("token_type = %q, issued_token_type = %q", r.Str("token_type"), r.Str("issued_token_type"))
	}
	if r.Body["expires_in"] != float64(60) || r.Str("scope") != "orders:read" {
		t.Errorf("expires_in = %v, scope = %q", r.Body["expires_in"], r.Str("scope"))
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", r.Header.Get("Cache-Control"))
	}
	c := h.verifyLease(r.Str("access_token"), apiAud)
	if c.Subject != "alice" || c.ClientID != "demo-app" || c.JKT != jkt(k1) || c.LeaseID == "" || c.LeaseID != r.Str("lease_id") || c.JTI == "" {
		t.Errorf("claims = %+v", c)
	}
	if got := c.Expiry.Sub(c.IssuedAt); got != time.Minute {
		t.Errorf("exp - iat = %v, want 1m", got)
	}
	if !strings.HasPrefix(r.Str("renewal_token"), RenewalPrefix) {
		t.Errorf("renewal_token = %q", r.Str("renewal_token"))
	}
	log := h.auditLog()
	if !strings.Contains(log, `"event":"lease.issue"`) || !strings.Contains(log, `"rule":"ops-write"`) {
		t.Errorf("audit lacks the lease line:\n%s", log)
	}
	if strings.Contains(log, r.Str("access_token")) || strings.Contains(log, r.Str("renewal_token")) {
		t.Error("audit log contains a token")
	}
}

// TestVendingRows is docs/security.md#vending, plus the pinned decisions on
// clamping and binding (#d6), through real HTTP.
func TestVendingRows(t *testing.T) {
	h := newHarness(t)
	k1, k2 := newKey(t), newKey(t)
	type tc struct {
		key    dpop.Signer
		body   map[string]any
		status int
		code   string
		check  func(t *testing.T, r result)
	}
	alice := func(scope []string) string { return h.login("alice", "demo-app", scope, k1) }
	tests := map[string]func() tc{
		"scope above the subject token's grant": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "scope": "orders:write admin"},
				status: 400, code: CodeInvalidScope}
		},
		"scope above the policy's grant": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": h.login("bob", "demo-app", readWrite, k1), "client_id": "demo-app", "scope": "orders:write"},
				status: 400, code: CodeInvalidScope}
		},
		"scope not the app's": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": h.login("bob", "demo-app", nil, k1), "client_id": "demo-app", "scope": "billing:read"},
				status: 400, code: CodeInvalidScope}
		},
		"TTL above the cap is clamped, expires_in tells the truth": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readWrite), "client_id": "demo-app", "scope": "orders:write", "ttl": 3600},
				status: 200, check: func(t *testing.T, r result) {
					c := h.verifyLease(r.Str("access_token"), apiAud)
					if r.Body["expires_in"] != float64(300) || c.Expiry.Sub(c.IssuedAt) != 5*time.Minute {
						t.Errorf("expires_in = %v, exp-iat = %v; want 300, 5m", r.Body["expires_in"], c.Expiry.Sub(c.IssuedAt))
					}
				}}
		},
		"TTL as a duration string": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readWrite), "client_id": "demo-app", "ttl": "2m"},
				status: 200, check: func(t *testing.T, r result) {
					if r.Body["expires_in"] != float64(120) || r.Str("scope") != "orders:read" {
						t.Errorf("expires_in = %v scope = %q, want 120, read-only default", r.Body["expires_in"], r.Str("scope"))
					}
				}}
		},
		"TTL laundering: a lease as the subject token": func() tc {
			l := h.lease(k1, map[string]any{"subject_token": alice(readWrite), "client_id": "demo-app"})
			return tc{key: k1, body: map[string]any{"subject_token": l.Str("access_token"), "client_id": "demo-app"},
				status: 400, code: CodeInvalidGrant}
		},
		"resource outside the app's allow-list": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "resource": "https://billing.internal"},
				status: 400, code: CodeInvalidTarget}
		},
		"audience outside the app's allow-list": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "audience": "https://api.example.test.evil"},
				status: 400, code: CodeInvalidTarget}
		},
		"allowed second resource becomes aud": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "resource": "https://api2.example.test"},
				status: 200, check: func(t *testing.T, r result) { h.verifyLease(r.Str("access_token"), "https://api2.example.test") }}
		},
		"dpop_jkt names the victim's key": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "dpop_jkt": jkt(k2)},
				status: 400, code: CodeInvalidRequest}
		},
		"jkt names the victim's key": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "jkt": jkt(k2)},
				status: 400, code: CodeInvalidRequest}
		},
		"cnf names the victim's key": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "cnf": map[string]string{"jkt": jkt(k2)}},
				status: 400, code: CodeInvalidRequest}
		},
		"cnf malformed": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "cnf": "x"},
				status: 400, code: CodeInvalidRequest}
		},
		"dpop_jkt naming the proof key is fine": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "dpop_jkt": jkt(k1)},
				status: 200, check: func(t *testing.T, r result) {
					if c := h.verifyLease(r.Str("access_token"), apiAud); c.JKT != jkt(k1) {
						t.Errorf("cnf.jkt = %q", c.JKT)
					}
				}}
		},
		"subject override": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "subject": "bob"},
				status: 400, code: CodeInvalidRequest}
		},
		"sub override": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "sub": "bob"},
				status: 400, code: CodeInvalidRequest}
		},
		"actor_token": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "actor_token": alice(readOnly)},
				status: 400, code: CodeInvalidRequest}
		},
		// Decision 4: a proof key other than the token's cnf.jkt is
		// invalid_token, 401, at every endpoint that takes a token.
		"subject token bound to another key": func() tc {
			return tc{key: k2, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app"},
				status: 401, code: CodeInvalidToken, check: wantKeyMismatch}
		},
		"subject token issued to another client": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": h.login("alice", "other-app", readOnly, k1), "client_id": "demo-app"},
				status: 400, code: CodeInvalidGrant}
		},
		"unknown app": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "nope"},
				status: 400, code: CodeInvalidClient}
		},
		"policy denies the subject": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": h.login("mallory", "demo-app", readOnly, k1), "client_id": "demo-app"},
				status: 400, code: CodeAccessDenied, check: func(t *testing.T, _ result) {
					if !strings.Contains(h.auditLog(), `"rule":"no-mallory"`) {
						t.Error("the denial's audit line does not name the rule")
					}
				}}
		},
		"garbage subject token": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": "a.b.c", "client_id": "demo-app"}, status: 400, code: CodeInvalidGrant}
		},
		"subject token from an unknown issuer": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": foreignToken(t, h, "https://evil.example", k1), "client_id": "demo-app"}, status: 400, code: CodeInvalidGrant}
		},
		"subject token signed by a foreign key under our issuer": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": foreignToken(t, h, h.as.Issuer(), k1), "client_id": "demo-app"}, status: 400, code: CodeInvalidGrant}
		},
		"missing subject token": func() tc {
			return tc{key: k1, body: map[string]any{"client_id": "demo-app"}, status: 400, code: CodeInvalidRequest}
		},
		"unknown parameter": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "scopes": "admin"}, status: 400, code: CodeInvalidRequest}
		},
		"negative ttl": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "ttl": -5}, status: 400, code: CodeInvalidRequest}
		},
		"malformed scope": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app", "scope": "orders:read  admin"}, status: 400, code: CodeInvalidScope}
		},
		"no DPoP proof": func() tc {
			return tc{body: map[string]any{"subject_token": alice(readOnly), "client_id": "demo-app"}, status: 400, code: CodeInvalidDPoPProof}
		},
		"preview app gets a preview lease": func() tc {
			return tc{key: k1, body: map[string]any{"subject_token": h.login("zed", "preview-app", readOnly, k1), "client_id": "preview-app"},
				status: 200, check: func(t *testing.T, r result) {
					if c := h.verifyLease(r.Str("access_token"), apiAud); !c.Preview || r.Body["preview"] != true {
						t.Errorf("preview claim = %v, response preview = %v", c.Preview, r.Body["preview"])
					}
				}}
		},
	}
	for name, mk := range tests {
		t.Run(name, func(t *testing.T) {
			c := mk()
			before := strings.Count(h.auditLog(), `"event":"lease.issue"`)
			r := h.lease(c.key, c.body)
			if c.status != 200 {
				wantError(t, r, c.status, c.code)
				if after := strings.Count(h.auditLog(), `"event":"lease.issue"`); after != before {
					t.Error("a refused request minted a lease")
				}
				if r.Str("error_description") == "" {
					t.Error("no error_description")
				}
			} else if r.Status != 200 {
				t.Fatalf("got %d %s, want 200", r.Status, r.Raw)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	h := newHarness(t)
	k1 := newKey(t)
	tok := h.login("alice", "demo-app", readOnly, k1)
	tests := []struct {
		name   string
		body   string
		ctype  string
		status int
	}{
		{"malformed JSON", `{"subject_token":`, "application/json", 400},
		{"duplicate member", `{"client_id":"other-app","client_id":"demo-app","subject_token":"` + tok + `"}`, "application/json", 400},
		{"not an object", `["demo-app"]`, "application/json", 400},
		{"trailing data", `{"client_id":"demo-app","subject_token":"` + tok + `"} {}`, "application/json", 400},
		{"case-variant member", `{"Client_id":"demo-app","subject_token":"` + tok + `"}`, "application/json", 400},
		{"form instead of JSON", `client_id=demo-app`, "application/x-www-form-urlencoded", 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.postJSON(PathLease, tt.body, k1, "Content-Type", tt.ctype)
			wantError(t, r, tt.status, CodeInvalidRequest)
		})
	}
}

func TestProofChecks(t *testing.T) {
	h := newHarness(t)
	k1 := newKey(t)
	body := func() map[string]any {
		return map[string]any{"subject_token": h.login("alice", "demo-app", readOnly, k1), "client_id": "demo-app"}
	}
	t.Run("htu from Host instead of the public URL", func(t *testing.T) {
		// The listener's URL differs from BaseURL only in what a Host-
		// derived htu would give; use another path to be sure.
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+PathLease, strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("DPoP", h.proof(k1, "https://api.example.test"+PathLease))
		wantError(t, h.do(req), 400, CodeInvalidDPoPProof)
	})
	t.Run("replayed proof", func(t *testing.T) {
		p := h.proof(k1, h.as.Issuer()+PathLease)
		var last result
		for i := 0; i < 2; i++ {
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+PathLease, strings.NewReader(mustJSON(body())))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("DPoP", p)
			last = h.do(req)
			if i == 0 && last.Status != 200 {
				t.Fatalf("first use: %d %s", last.Status, last.Raw)
			}
		}
		wantError(t, last, 400, CodeInvalidDPoPProof)
	})
	t.Run("two DPoP headers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+PathLease, strings.NewReader(mustJSON(body())))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Add("DPoP", h.proof(k1, h.as.Issuer()+PathLease))
		req.Header.Add("DPoP", h.proof(k1, h.as.Issuer()+PathLease))
		wantError(t, h.do(req), 400, CodeInvalidDPoPProof)
	})
	t.Run("proof for the renew endpoint", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+PathLease, strings.NewReader(mustJSON(body())))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("DPoP", h.proof(k1, h.as.Issuer()+PathRenew))
		r := h.do(req)
		wantError(t, r, 400, CodeInvalidDPoPProof)
		if !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "DPoP-Nonce") {
			t.Errorf("Access-Control-Expose-Headers = %q", r.Header.Get("Access-Control-Expose-Headers"))
		}
	})
	t.Run("preflight", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, h.srv.URL+PathLease, nil)
		r := h.do(req)
		if r.Status != 204 || !strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "DPoP") {
			t.Errorf("preflight: %d %v", r.Status, r.Header)
		}
	})
}

func TestNonceMode(t *testing.T) {
	ns := &fixedNonce{cur: "n-1"}
	h := newHarness(t, func(h *harness) { h.nonce = ns })
	k1 := newKey(t)
	body := map[string]any{"subject_token": h.login("alice", "demo-app", readOnly, k1), "client_id": "demo-app"}
	r := h.lease(k1, body)
	wantError(t, r, 400, CodeUseDPoPNonce)
	if got := r.Header.Values("DPoP-Nonce"); len(got) != 1 || got[0] != "n-1" {
		t.Fatalf("DPoP-Nonce = %q", got)
	}
	p, _ := dpop.NewProof(k1, http.MethodPost, h.as.Issuer()+PathLease, dpop.ProofOptions{Now: h.clk.Now(), Nonce: "n-1"})
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+PathLease, strings.NewReader(mustJSON(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("DPoP", p)
	if r := h.do(req); r.Status != 200 {
		t.Fatalf("with nonce: %d %s", r.Status, r.Raw)
	}
}

type fixedNonce struct{ cur string }

func (n *fixedNonce) Current() string { return n.cur }
func (n *fixedNonce) CheckNonce(s string) error {
	if s != n.cur {
		return errStale
	}
	return nil
}

func TestQuota(t *testing.T) {
	h := newHarness(t)
	k1 := newKey(t)
	body := func() map[string]any {
		return map[string]any{"subject_token": h.login("zed", "quota-app", readOnly, k1), "client_id": "quota-app"}
	}
	for i := 0; i < 2; i++ {
		if r := h.lease(k1, body()); r.Status != 200 {
			t.Fatalf("lease %d: %d %s", i, r.Status, r.Raw)
		}
	}
	r := h.lease(k1, body())
	wantError(t, r, http.StatusTooManyRequests, CodeUnavailable)
	if r.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	h.clk.Add(time.Hour)
	if r := h.lease(k1, body()); r.Status != 200 {
		t.Fatalf("next hour: %d %s", r.Status, r.Raw)
	}
}

func TestRevokedSubjectToken(t *testing.T) {
	h := newHarness(t)
	k1 := newKey(t)
	tok := h.login("alice", "demo-app", readOnly, k1)
	if err := h.db.Revoke(context.Background(), store.Revocation{Kind: store.KindSub, Value: "alice"}, store.WatermarkUntil(h.clk.Now())); err != nil {
		t.Fatal(err)
	}
	wantError(t, h.lease(k1, map[string]any{"subject_token": tok, "client_id": "demo-app"}), 400, CodeInvalidGrant)
}

func TestExpiredSubjectToken(t *testing.T) {
	h := newHarness(t)
	k1 := newKey(t)
	tok := h.login("alice", "demo-app", readOnly, k1)
	h.clk.Add(11 * time.Minute)
	wantError(t, h.lease(k1, map[string]any{"subject_token": tok, "client_id": "demo-app"}), 400, CodeInvalidGrant)
}

// TestTokenExchange runs the same vending through the authorization
// server's token endpoint (RFC 8693), which verifies the proof itself.
func TestTokenExchange(t *testing.T) {
	h := newHarness(t)
	k1, k2 := newKey(t), newKey(t)
	form := func(mod func(url.Values)) url.Values {
		f := url.Values{
			"grant_type":         {GrantTokenExchange},
			"client_id":          {"demo-app"},
			"subject_token":      {h.login("alice", "demo-app", readWrite, k1)},
			"subject_token_type": {TokenTypeAccessToken},
			"scope":              {"orders:write"},
			"resource":           {apiAud},
			"ttl":                {"7200"},
		}
		if mod != nil {
			mod(f)
		}
		return f
	}
	r := h.postForm("/token", form(nil), k1)
	if r.Status != 200 {
		t.Fatalf("exchange: %d %s", r.Status, r.Raw)
	}
	if r.Str("token_type") != "DPoP" || r.Str("issued_token_type") != TokenTypeAccessToken || r.Body["expires_in"] != float64(300) {
		t.Errorf("response = %s", r.Raw)
	}
	c := h.verifyLease(r.Str("access_token"), apiAud)
	if c.JKT != jkt(k1) || c.LeaseID == "" || c.Subject != "alice" {
		t.Errorf("claims = %+v", c)
	}
	if !strings.HasPrefix(r.Str("refresh_token"), RenewalPrefix) {
		t.Errorf("refresh_token = %q", r.Str("refresh_token"))
	}
	rows := []struct {
		name string
		key  dpop.Signer
		mod  func(url.Values)
		code string
	}{
		{"scope above grant", k1, func(f url.Values) {
			f.Set("subject_token", h.login("alice", "demo-app", readOnly, k1))
			f.Set("scope", "orders:write admin")
		}, CodeInvalidScope},
		{"resource outside allow-list", k1, func(f url.Values) { f.Set("resource", "https://billing.internal") }, CodeInvalidTarget},
		{"audience outside allow-list", k1, func(f url.Values) { f.Del("resource"); f.Set("audience", "https://billing.internal") }, CodeInvalidTarget},
		{"dpop_jkt of another key", k1, func(f url.Values) { f.Set("dpop_jkt", jkt(k2)) }, CodeInvalidRequest},
		{"jkt of another key", k1, func(f url.Values) { f.Set("jkt", jkt(k2)) }, CodeInvalidRequest},
		{"cnf of another key", k1, func(f url.Values) { f.Set("cnf", `{"jkt":"`+jkt(k2)+`"}`) }, CodeInvalidRequest},
		{"sub override", k1, func(f url.Values) { f.Set("sub", "bob") }, CodeInvalidRequest},
		{"unknown issuer", k1, func(f url.Values) { f.Set("subject_token", foreignToken(t, h, "https://evil.example", k1)) }, CodeInvalidGrant},
		{"unknown scope syntax", k1, func(f url.Values) { f.Set("scope", "a\"b") }, CodeInvalidScope},
		{"actor_token", k1, func(f url.Values) { f.Set("actor_token", "x"); f.Set("actor_token_type", TokenTypeAccessToken) }, CodeInvalidRequest},
		{"subject override", k1, func(f url.Values) { f.Set("subject", "bob") }, CodeInvalidRequest},
		{"missing subject_token_type", k1, func(f url.Values) { f.Del("subject_token_type") }, CodeInvalidRequest},
		{"refresh token requested", k1, func(f url.Values) {
			f.Set("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token")
		}, CodeInvalidRequest},
		{"laundering", k1, func(f url.Values) { f.Set("subject_token", r.Str("access_token")) }, CodeInvalidGrant},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			wantError(t, h.postForm("/token", form(row.mod), row.key), 400, row.code)
		})
	}
	t.Run("proof by another key", func(t *testing.T) {
		r := h.postForm("/token", form(nil), k2)
		wantError(t, r, 401, CodeInvalidToken)
		wantKeyMismatch(t, r)
	})
	t.Run("no proof", func(t *testing.T) {
		r := h.postForm("/token", form(nil), nil)
		if r.Status != 400 || (r.Str("error") != CodeInvalidDPoPProof && r.Str("error") != CodeInvalidRequest) {
			t.Fatalf("got %d %s", r.Status, r.Raw)
		}
	})
}

// wantKeyMismatch: the 401 of docs/security.md#d4 carries a DPoP challenge naming
// invalid_token and the accepted algorithms (RFC 6750 section 3, RFC 9449
// section 7.1), readable by a browser app.
func wantKeyMismatch(t *testing.T, r result) {
	t.Helper()
	ch := r.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(ch, "DPoP ") || !strings.Contains(ch, `error="invalid_token"`) || !strings.Contains(ch, `algs="ES256`) {
		t.Errorf("WWW-Authenticate = %q", ch)
	}
	if !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
		t.Errorf("Access-Control-Expose-Headers = %q", r.Header.Get("Access-Control-Expose-Headers"))
	}
}

// foreignToken is a well-formed login token for alice signed by a key
// the embedded issuer never had, claiming iss.
func foreignToken(t testing.TB, h *harness, iss string, k dpop.Signer) string {
	t.Helper()
	ks, err := token.NewKeySet(h.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	m := &token.Minter{Keys: ks, Issuer: iss, Now: h.clk.Now}
	raw, _, err := m.Issue(context.Background(), token.Spec{
		Subject: "alice", Audience: []string{h.as.Issuer()}, ClientID: "demo-app", Scope: readOnly, JKT: jkt(k),
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

var errStale = errors.New("stale nonce")
