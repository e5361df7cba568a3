package lease

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/keyless-dev/keyless/sidecar/federation"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// idp is an external OpenID provider started in the test: discovery, a
// JWKS with an RSA and an EC key, and tokens shaped like those of real
// providers (Dex, Keycloak, Entra ID), signed by its keys. The
// oidc-provider tests (oidcprovider_test.go) use real tokens; this one
// makes the negative rows, which need tokens no honest provider mints.
type idp struct {
	srv      *httptest.Server
	issuer   string // what discovery claims (normally srv.URL)
	rsa      *rsa.PrivateKey
	ec       *ecdsa.PrivateKey
	jwksHits atomic.Int32
	discHits atomic.Int32
	down     atomic.Bool
	mu       sync.Mutex
	publish  []string // kids published; nil: all
	now      func() time.Time
}

var (
	idpKeysOnce sync.Once
	idpRSA      *rsa.PrivateKey
	idpEC       *ecdsa.PrivateKey
)

func newIdP(t *testing.T, clk *clock) *idp { return newIdPTB(t, clk) }

func newIdPTB(t testing.TB, clk *clock) *idp {
	t.Helper()
	idpKeysOnce.Do(func() {
		var err error
		if idpRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if idpEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
	p := &idp{rsa: idpRSA, ec: idpEC, now: clk.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discHits.Add(1)
		if p.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"issuer": p.issuer, "jwks_uri": p.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
		if p.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(p.jwks(t))
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL
	return p
}

func (p *idp) jwks(t testing.TB) []byte {
	p.mu.Lock()
	publish := p.publish
	p.mu.Unlock()
	set := jwk.NewSet()
	for kid, pub := range map[string]crypto.PublicKey{"rsa-1": p.rsa.Public(), "ec-1": p.ec.Public()} {
		if publish != nil && !containsStr(publish, kid) {
			continue
		}
		k, err := jwk.FromRaw(pub)
		if err != nil {
			t.Fatal(err)
		}
		k.Set(jwk.KeyIDKey, kid)
		set.AddKey(k)
	}
	b, _ := json.Marshal(set)
	return b
}

func containsStr(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

// claims is a Dex-shaped ID token for sub, issued to client with keyless
// as a second audience, valid for 10 minutes.
func (p *idp) claims(sub, client string) map[string]any {
	now := p.now()
	jti, _ := token.RandomID()
	return map[string]any{"iss": p.issuer, "sub": sub, "jti": jti, "aud": []string{client, "keyless"}, "azp": client,
		"exp": now.Add(10 * time.Minute).Unix(), "iat": now.Unix(), "email": sub + "@example.com",
		"email_verified": true, "groups": []string{"ops-team"}}
}

// sign signs claims with the RSA key (RS256, kid rsa-1) unless hdr says
// otherwise; hdr values nil delete a member.
func (p *idp) sign(t testing.TB, claims map[string]any, hdr map[string]any) string {
	t.Helper()
	h := map[string]any{"alg": "RS256", "kid": "rsa-1"}
	for k, v := range hdr {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	var key any = p.rsa
	if h["alg"] == "ES256" {
		key = p.ec
	}
	hb, _ := json.Marshal(h)
	pb, _ := json.Marshal(claims)
	input := b64u(hb) + "." + b64u(pb)
	s, err := jws.NewSigner(jwa.SignatureAlgorithm(h["alg"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign([]byte(input), key)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64u(sig)
}

func (p *idp) token(t testing.TB, sub, client string, change map[string]any) string {
	t.Helper()
	return p.sign(t, with(p.claims(sub, client), change), nil)
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func with(base map[string]any, change map[string]any) map[string]any {
	m := maps.Clone(base)
	for k, v := range change {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// extIssuer is the vending Issuer of p under name, configured as cfg
// (issuer, name and audience filled in when empty).
func extIssuer(t testing.TB, p *idp, name string, cfg IssuerConfig) Issuer {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = name
	}
	if cfg.Issuer == "" {
		cfg.Issuer = p.srv.URL
	}
	if cfg.Audience == nil {
		cfg.Audience = federation.StringList{"keyless"}
	}
	v, err := federation.New(cfg.Config, federation.Options{Client: p.srv.Client(), Now: p.now})
	if err != nil {
		t.Fatal(err)
	}
	return Issuer{Issuer: cfg.Issuer, Name: cfg.Name, Federation: v, AnyClient: cfg.AnyClient,
		IgnoreScope: cfg.IgnoreScope, RenewPastToken: time.Duration(cfg.RenewPastToken)}
}

func TestExternalIssuer(t *testing.T) {
	clk := &clock{T: time.Unix(1_800_000_000, 0)}
	ext := newIdP(t, clk)
	h := newHarness(t, func(h *harness) {
		h.clk = clk
		h.extra = []Issuer{extIssuer(t, ext, "corp", IssuerConfig{Config: federation.Config{
			GroupsClaim: "groups", GroupMap: map[string]federation.StringList{"ops-team": {"ops"}}}})}
	})
	k1 := newKey(t)
	lease := func(tok string, scope string) result {
		return h.lease(k1, map[string]any{"subject_token": tok, "client_id": "demo-app", "scope": scope})
	}

	r := lease(ext.token(t, "erin", "demo-app", nil), "orders:write")
	if r.Status != 200 {
		t.Fatalf("external ID token: %d %s", r.Status, r.Raw)
	}
	c := h.verifyLease(r.Str("access_token"), apiAud)
	if c.Subject != "erin" || c.IdP != "corp" || c.JKT != jkt(k1) || c.Issuer != h.as.Issuer() {
		t.Errorf("lease claims = %+v", c)
	}
	if ext.discHits.Load() != 1 || ext.jwksHits.Load() != 1 {
		t.Errorf("discovery hits %d, JWKS hits %d; want 1, 1", ext.discHits.Load(), ext.jwksHits.Load())
	}

	t.Run("token exchange with subject_token_type id_token", func(t *testing.T) {
		f := map[string][]string{
			"grant_type": {GrantTokenExchange}, "client_id": {"demo-app"},
			"subject_token":      {ext.token(t, "erin", "demo-app", nil)},
			"subject_token_type": {TokenTypeIDToken}, "scope": {"orders:read"},
		}
		r := h.postForm("/token", f, k1)
		if r.Status != 200 || r.Str("token_type") != "DPoP" {
			t.Fatalf("exchange: %d %s", r.Status, r.Raw)
		}
		if c := h.verifyLease(r.Str("access_token"), apiAud); c.IdP != "corp" || c.Subject != "erin" {
			t.Errorf("lease claims = %+v", c)
		}
	})
	t.Run("JWT access token through RFC 8693, ES256, typ at+jwt, DPoP-bound", func(t *testing.T) {
		tok := ext.sign(t, with(ext.claims("erin", "demo-app"), map[string]any{
			"aud": "keyless", "azp": nil, "client_id": "demo-app", "cnf": map[string]string{"jkt": jkt(k1)}}),
			map[string]any{"alg": "ES256", "kid": "ec-1", "typ": "at+jwt"})
		f := map[string][]string{
			"grant_type": {GrantTokenExchange}, "client_id": {"demo-app"},
			"subject_token": {tok}, "subject_token_type": {TokenTypeAccessToken},
		}
		if r := h.postForm("/token", f, k1); r.Status != 200 {
			t.Fatalf("exchange: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("warm cache: no refetch", func(t *testing.T) {
		before := ext.jwksHits.Load()
		if r := lease(ext.token(t, "erin", "demo-app", nil), "orders:read"); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		if ext.jwksHits.Load() != before {
			t.Error("JWKS fetched again with a warm cache")
		}
	})
	t.Run("embedded-issuer key claiming the external iss", func(t *testing.T) {
		clk.Add(federation.DefaultMinRefresh) // outside the refresh rate limit: a definite answer
		m := &token.Minter{Keys: h.as.Keys(), Issuer: ext.srv.URL, Now: clk.Now}
		tok, _, err := m.Issue(context.Background(), token.Spec{Subject: "erin", Audience: []string{"keyless"}, ClientID: "demo-app", JKT: jkt(k1)})
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, lease(tok, "orders:read"), 400, CodeInvalidGrant)
	})
}

func TestExternalIssuerDiscoveryMismatch(t *testing.T) {
	clk := &clock{T: time.Unix(1_800_000_000, 0)}
	ext := newIdP(t, clk)
	ext.issuer = "https://impostor.example" // discovery names another issuer
	h := newHarness(t, func(h *harness) {
		h.clk = clk
		h.extra = []Issuer{extIssuer(t, ext, "corp", IssuerConfig{})}
	})
	k1 := newKey(t)
	tok := ext.sign(t, with(ext.claims("erin", "demo-app"), map[string]any{"iss": ext.srv.URL}), nil)
	r := h.lease(k1, map[string]any{"subject_token": tok, "client_id": "demo-app"})
	wantError(t, r, http.StatusServiceUnavailable, CodeUnavailable)
	if r.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if ext.jwksHits.Load() != 0 {
		t.Error("JWKS fetched from an issuer whose discovery did not match")
	}
}
