package lease

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/token"
)

// idp is a second OIDC issuer started in the test: its own discovery
// document and JWKS, tokens minted with its own key set.
type idp struct {
	srv      *httptest.Server
	keys     *token.KeySet
	minter   *token.Minter
	issuer   string // what discovery claims (normally srv.URL)
	jwksHits atomic.Int32
	discHits atomic.Int32
}

func newIdP(t *testing.T, clk *clock) *idp { return newIdPTB(t, clk) }

func newIdPTB(t testing.TB, clk *clock) *idp {
	t.Helper()
	ks, err := token.NewKeySet(clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{keys: ks}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discHits.Add(1)
		json.NewEncoder(w).Encode(map[string]string{"issuer": p.issuer, "jwks_uri": p.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
		b, _ := p.keys.JWKS()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(b)
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL
	p.minter = &token.Minter{Keys: ks, Issuer: p.srv.URL, Now: clk.Now}
	return p
}

func (p *idp) token(t *testing.T, sub, aud string, jkt string) string {
	return p.tokenTB(t, sub, aud, jkt, "demo-app")
}

func (p *idp) tokenTB(t testing.TB, sub, aud, jkt, client string) string {
	t.Helper()
	raw, _, err := p.minter.Issue(context.Background(), token.Spec{
		Subject: sub, Audience: []string{aud}, ClientID: client, Scope: []string{"openid", "profile"}, JKT: jkt,
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestExternalIssuer(t *testing.T) {
	clk := &clock{T: time.Unix(1_800_000_000, 0)}
	ext := newIdP(t, clk)
	h := newHarness(t, func(h *harness) {
		h.clk = clk
		h.extra = []Issuer{{
			Issuer:      ext.srv.URL,
			Verifier:    &External{Issuer: ext.srv.URL, Audience: "keyless", Client: ext.srv.Client(), Now: clk.Now},
			IgnoreScope: true, // the IdP's scopes (openid profile) are not app scopes
		}}
	})
	k1 := newKey(t)
	lease := func(tok string) result {
		return h.lease(k1, map[string]any{"subject_token": tok, "client_id": "demo-app", "scope": "orders:read"})
	}

	r := lease(ext.token(t, "erin@idp", "keyless", jkt(k1)))
	if r.Status != 200 {
		t.Fatalf("external token: %d %s", r.Status, r.Raw)
	}
	c := h.verifyLease(r.Str("access_token"), apiAud)
	if c.Subject != "erin@idp" || c.JKT != jkt(k1) || c.Issuer != h.as.Issuer() {
		t.Errorf("lease claims = %+v", c)
	}
	if ext.discHits.Load() != 1 || ext.jwksHits.Load() != 1 {
		t.Errorf("discovery hits %d, JWKS hits %d; want 1, 1", ext.discHits.Load(), ext.jwksHits.Load())
	}

	t.Run("warm cache: no refetch", func(t *testing.T) {
		before := ext.jwksHits.Load()
		if r := lease(ext.token(t, "erin@idp", "keyless", jkt(k1))); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		if ext.jwksHits.Load() != before {
			t.Error("JWKS fetched again with a warm cache")
		}
	})
	t.Run("wrong audience", func(t *testing.T) {
		wantError(t, lease(ext.token(t, "erin@idp", "someone-else", jkt(k1))), 400, CodeInvalidGrant)
	})
	t.Run("bound to another key", func(t *testing.T) {
		wantError(t, lease(ext.token(t, "erin@idp", "keyless", jkt(newKey(t)))), 401, CodeInvalidToken)
	})
	t.Run("embedded-issuer key claiming the external iss", func(t *testing.T) {
		m := &token.Minter{Keys: h.as.Keys(), Issuer: ext.srv.URL, Now: clk.Now}
		tok, _, err := m.Issue(context.Background(), token.Spec{Subject: "erin@idp", Audience: []string{"keyless"}, ClientID: "demo-app", JKT: jkt(k1)})
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, lease(tok), 400, CodeInvalidGrant)
	})
	t.Run("key rotation at the IdP is picked up", func(t *testing.T) {
		if err := ext.keys.Rotate(clk.Now(), 0); err != nil {
			t.Fatal(err)
		}
		clk.Add(31 * time.Second) // past RemoteJWKS's refresh interval
		if r := lease(ext.token(t, "erin@idp", "keyless", jkt(k1))); r.Status != 200 {
			t.Fatalf("after rotation: %d %s\n%s", r.Status, r.Raw, h.auditLog())
		}
	})
	// Last: the clock only moves forward.
	t.Run("expired", func(t *testing.T) {
		tok := ext.token(t, "erin@idp", "keyless", jkt(k1))
		clk.Add(time.Hour)
		wantError(t, lease(tok), 400, CodeInvalidGrant)
	})
}

func TestExternalIssuerDiscoveryMismatch(t *testing.T) {
	clk := &clock{T: time.Unix(1_800_000_000, 0)}
	ext := newIdP(t, clk)
	ext.issuer = "https://impostor.example" // discovery names another issuer
	h := newHarness(t, func(h *harness) {
		h.clk = clk
		h.extra = []Issuer{{Issuer: ext.srv.URL, Verifier: &External{Issuer: ext.srv.URL, Audience: "keyless", Client: ext.srv.Client(), Now: clk.Now}, IgnoreScope: true}}
	})
	k1 := newKey(t)
	r := h.lease(k1, map[string]any{"subject_token": ext.token(t, "erin@idp", "keyless", jkt(k1)), "client_id": "demo-app"})
	wantError(t, r, http.StatusServiceUnavailable, CodeUnavailable)
	if ext.jwksHits.Load() != 0 {
		t.Error("JWKS fetched from an issuer whose discovery did not match")
	}
}
