package lease

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/federation"
	"github.com/keyless-dev/keyless/sidecar/internal/idptest"
	"github.com/keyless-dev/keyless/sidecar/proxy"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// TestOIDCProviderEndToEnd: a real OpenID Provider (npm oidc-provider)
// signs the user in through its device flow; keyless's vending service
// exchanges its tokens for leases; the proxy forwards the calls with the
// IdP's subject and issuer name in the identity headers. Both token
// kinds, DPoP-bound and bearer, and the refusals real tokens can trigger.
func TestOIDCProviderEndToEnd(t *testing.T) {
	op := idptest.Start(t)
	clk := &clock{T: time.Now()} // the IdP's tokens carry real times
	h := newHarness(t, func(h *harness) {
		h.clk = clk
		v, err := federation.New(federation.Config{
			Name: "corp", Issuer: op.Issuer,
			Audience:       federation.StringList{idptest.Resource, idptest.ClientID},
			GroupsClaim:    "groups",
			GroupMap:       map[string]federation.StringList{"ops-team": {"ops"}},
			RequiredClaims: map[string]any{"email_verified": true},
		}, federation.Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		h.extra = []Issuer{{Issuer: op.Issuer, Name: "corp", Federation: v}}
	})

	// The proxy in front of an upstream that records what it receives.
	var mu sync.Mutex
	var seen []http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		io.WriteString(w, `{"ok":true}`)
	}))
	defer upstream.Close()
	p, err := proxy.New(proxy.Config{
		PublicURL: apiAud,
		Upstreams: map[string]proxy.Upstream{"api": {URL: upstream.URL}},
		Routes: []proxy.Route{
			{Name: "read", Methods: []string{"GET"}, Path: "/v1/orders", Upstream: "api", Scopes: []string{"orders:read"}},
			{Name: "write", Methods: []string{"POST"}, Path: "/v1/orders", Upstream: "api", Scopes: []string{"orders:write"}},
		},
	}, proxy.Options{
		Tokens:      &token.JWTVerifier{Keys: h.as.Keys(), Issuer: h.as.Issuer(), Audience: apiAud, Now: clk.Now},
		Replay:      &memstore.Replay{Now: clk.Now},
		Revocations: h.db,
		Now:         clk.Now,
		Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(p)
	defer ps.Close()
	call := func(method, lease string, k dpop.Signer) (int, http.Header) {
		t.Helper()
		proof, err := dpop.NewProof(k, method, apiAud+"/v1/orders", dpop.ProofOptions{Now: clk.Now(), AccessToken: lease})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(method, ps.URL+"/v1/orders", nil)
		req.Host = "api.example.test" // the proxy's public host (its virtual-host check)
		req.Header.Set("Authorization", "DPoP "+lease)
		req.Header.Set("DPoP", proof)
		req.Header.Set("X-Keyless-Issuer", "forged")
		resp, err := ps.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		mu.Lock()
		defer mu.Unlock()
		if resp.StatusCode != 200 || len(seen) == 0 {
			return resp.StatusCode, nil
		}
		return resp.StatusCode, seen[len(seen)-1]
	}
	wantIdentity := func(got http.Header, sub, scope string) {
		t.Helper()
		if got.Get("X-Keyless-Sub") != sub || got.Get("X-Keyless-Issuer") != "corp" || len(got.Values("X-Keyless-Issuer")) != 1 ||
			got.Get("X-Keyless-Scope") != scope || got.Get("X-Keyless-Client") != "demo-app" {
			t.Errorf("upstream identity: sub %q issuer %q scope %q client %q; want %s, corp, %s, demo-app",
				got.Get("X-Keyless-Sub"), got.Values("X-Keyless-Issuer"), got.Get("X-Keyless-Scope"), got.Get("X-Keyless-Client"), sub, scope)
		}
	}

	t.Run("DPoP-bound access token, RFC 8693", func(t *testing.T) {
		k := newKey(t)
		tok := op.DeviceFlow(t, idptest.Flow{Login: "alice", DPoP: k})
		if tok.TokenType != "DPoP" {
			t.Fatalf("IdP token_type = %q", tok.TokenType)
		}
		exchange := func(k dpop.Signer) result {
			return h.postForm("/token", url.Values{
				"grant_type": {GrantTokenExchange}, "client_id": {"demo-app"},
				"subject_token": {tok.AccessToken}, "subject_token_type": {TokenTypeAccessToken},
				"scope": {"orders:read"},
			}, k)
		}
		// Another key's proof: refused, whatever it asks.
		r := exchange(newKey(t))
		wantError(t, r, 401, "invalid_token")
		if !strings.Contains(r.Str("error_description"), "bound to another DPoP key") {
			t.Errorf("error_description = %q", r.Str("error_description"))
		}
		r = exchange(k)
		if r.Status != 200 {
			t.Fatalf("exchange: %d %s\n%s", r.Status, r.Raw, h.auditLog())
		}
		if code, got := call(http.MethodGet, r.Str("access_token"), k); code != 200 {
			t.Fatalf("proxy: %d", code)
		} else {
			wantIdentity(got, "alice", "orders:read")
		}
		// A DPoP-bound token may be exchanged again by its own key.
		if r := exchange(k); r.Status != 200 {
			t.Errorf("second exchange by the bound key: %d %s", r.Status, r.Raw)
		}
	})

	t.Run("bearer ID token, POST /v1/lease, group_map grants write", func(t *testing.T) {
		k := newKey(t)
		tok := op.DeviceFlow(t, idptest.Flow{Login: "alice"})
		if tok.TokenType != "Bearer" || tok.IDToken == "" {
			t.Fatalf("IdP answer: %+v", tok)
		}
		r := h.lease(k, map[string]any{"subject_token": tok.IDToken, "subject_token_type": TokenTypeIDToken,
			"client_id": "demo-app", "scope": "orders:write", "ttl": 3600})
		if r.Status != 200 {
			t.Fatalf("lease: %d %s\n%s", r.Status, r.Raw, h.auditLog())
		}
		// The lease never outlives the ID token.
		lease := h.verifyLease(r.Str("access_token"), apiAud)
		if idExp := jwtExp(t, tok.IDToken); lease.Expiry.After(idExp) {
			t.Errorf("lease exp %v after the ID token's %v", lease.Expiry, idExp)
		}
		if code, got := call(http.MethodPost, r.Str("access_token"), k); code != 200 {
			t.Fatalf("proxy: %d", code)
		} else {
			wantIdentity(got, "alice", "orders:write")
		}
		// A bearer token is exchanged once: a copy cannot mint a lease
		// for another key.
		r = h.lease(newKey(t), map[string]any{"subject_token": tok.IDToken, "client_id": "demo-app"})
		wantError(t, r, 400, CodeInvalidGrant)
		if !strings.Contains(r.Str("error_description"), "already exchanged") {
			t.Errorf("error_description = %q", r.Str("error_description"))
		}
	})

	t.Run("bearer ID token of an unverified email", func(t *testing.T) {
		k := newKey(t)
		tok := op.DeviceFlow(t, idptest.Flow{Login: "bob"})
		r := h.lease(k, map[string]any{"subject_token": tok.IDToken, "client_id": "demo-app"})
		wantError(t, r, 400, CodeInvalidGrant)
		if !strings.Contains(r.Str("error_description"), "email_verified") {
			t.Errorf("error_description = %q", r.Str("error_description"))
		}
	})

	t.Run("access token offered as an ID token", func(t *testing.T) {
		k := newKey(t)
		tok := op.DeviceFlow(t, idptest.Flow{Login: "alice", DPoP: k})
		r := h.lease(k, map[string]any{"subject_token": tok.AccessToken, "subject_token_type": TokenTypeIDToken, "client_id": "demo-app"})
		wantError(t, r, 400, CodeInvalidGrant)
	})
}

func jwtExp(t *testing.T, jwt string) time.Time {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	json.Unmarshal(b, &c)
	return time.Unix(c.Exp, 0)
}

// TestOIDCProviderLifetime: with a real IdP token of 20 minutes, the
// lease is capped by the policy (15 minutes), its renewal is cut at the
// token's exp, and renewal stops there.
func TestOIDCProviderLifetime(t *testing.T) {
	op := idptest.StartWith(t, idptest.Options{TTL: 20 * time.Minute})
	clk := &clock{T: time.Now()}
	h := newHarness(t, func(h *harness) {
		h.clk = clk
		v, err := federation.New(federation.Config{Name: "corp", Issuer: op.Issuer,
			Audience: federation.StringList{idptest.Resource, idptest.ClientID}}, federation.Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		h.extra = []Issuer{{Issuer: op.Issuer, Name: "corp", Federation: v}}
	})
	k := newKey(t)
	tok := op.DeviceFlow(t, idptest.Flow{DPoP: k})
	exp := jwtExp(t, tok.AccessToken)
	r := h.lease(k, map[string]any{"subject_token": tok.AccessToken, "client_id": "demo-app", "ttl": 3600})
	if r.Status != 200 || r.Body["expires_in"] != float64(900) || r.Str("renewal_token") == "" {
		t.Fatalf("lease: %d %s", r.Status, r.Raw)
	}
	clk.Add(14 * time.Minute)
	r = h.renew(r.Str("renewal_token"), k)
	if r.Status != 200 {
		t.Fatalf("renew: %d %s", r.Status, r.Raw)
	}
	if c := h.verifyLease(r.Str("access_token"), apiAud); c.Expiry.After(exp) {
		t.Errorf("renewed lease exp %v is after the IdP token's %v", c.Expiry, exp)
	}
	clk.Add(exp.Sub(clk.Now()))
	wantError(t, h.renew(r.Str("renewal_token"), k), 400, CodeInvalidGrant)
}
