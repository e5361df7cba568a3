package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/oidclogin"
)

// The /device page's side of login.oidc, up to the redirect and back,
// with a provider that only publishes its metadata (the whole flow with a
// real provider, Ory Hydra, is sidecar/cmd/keyless/hydra_test.go).
func newLoginHarness(t *testing.T) (*harness, *httptest.Server) {
	t.Helper()
	var idp *httptest.Server
	idp = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"issuer": idp.URL, "authorization_endpoint": idp.URL + "/authorize",
			"token_endpoint": idp.URL + "/token", "jwks_uri": idp.URL + "/jwks"})
	}))
	t.Cleanup(idp.Close)
	h := newHarness(t, func(o *Options) {
		lc := config.OIDCLogin{Name: "corp", Issuer: idp.URL, ClientID: "keyless", ClientSecretFile: "unused"}
		o.Config.Login.OIDC = []config.OIDCLogin{lc}
		o.Logins = []*oidclogin.Provider{oidclogin.New(lc, "secret", o.Config.Issuer.URL+CallbackPath, oidclogin.Options{})}
	})
	return h, idp
}

var loginLinkRe = regexp.MustCompile(`<a class="button primary" href="(/device/login\?[^"]+)">Sign in with corp</a>`)

// noFollow sends req and returns the first response, redirects included.
func (h *harness) noFollow(req *http.Request) *http.Response {
	h.t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestDeviceLoginStart(t *testing.T) {
	h, idp := newLoginHarness(t)
	k := newKey(t)
	_ = idp
	d := h.authorize("demo-app", k)
	cookie, tok, page := openConsent(t, h, d.UserCode)
	m := loginLinkRe.FindStringSubmatch(page.Raw)
	if m == nil || !strings.Contains(page.Raw, `name="password"`) {
		t.Fatalf("consent page lacks the provider's link or the sandbox users' form: %.600s", page.Raw)
	}
	link := h.srv.URL + html.UnescapeString(m[1])
	if lq, _ := url.Parse(link); lq.Query().Get("csrf") != tok || lq.Query().Get("provider") != "corp" {
		t.Errorf("sign-in link %s does not carry the page's anti-CSRF token and the provider", link)
	}
	get := func(u string, c *http.Cookie) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if c != nil {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		return h.noFollow(req)
	}
	// The link from another site (no cookie, or a forged token) starts nothing.
	if resp := get(link, nil); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("sign-in link without the CSRF cookie: %d %v", resp.StatusCode, resp.Cookies())
	}
	forged := strings.Replace(link, "csrf="+url.QueryEscape(tok), "csrf="+strings.Repeat("A", 43), 1)
	if resp := get(forged, cookie); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in link with a forged token: %d", resp.StatusCode)
	}
	resp := get(link, cookie)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.String(), idp.URL+"/authorize?") {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := loc.Query()
	for k, want := range map[string]string{"response_type": "code", "client_id": "keyless", "code_challenge_method": "S256",
		"redirect_uri": h.srv.URL + CallbackPath, "scope": "openid profile email"} {
		if q.Get(k) != want {
			t.Errorf("authorization request %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if len(q.Get("state")) < 43 || len(q.Get("nonce")) < 43 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("state, nonce or code_challenge too short: %v", q)
	}
	var lc *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == loginCookie {
			lc = c
		}
	}
	if lc == nil || !lc.HttpOnly || lc.SameSite != http.SameSiteLaxMode || lc.Path != "/device" || lc.Secure || lc.MaxAge != 600 {
		t.Fatalf("login cookie = %+v; want HttpOnly, SameSite=Lax, Path=/device, not Secure on http loopback, 10 minutes", lc)
	}

	callback := func(c *http.Cookie, state string) result {
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+CallbackPath+"?code=c&state="+url.QueryEscape(state), nil)
		if c != nil {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		return h.do(req)
	}
	// Without the browser's cookie: nothing to finish.
	if r := callback(nil, q.Get("state")); r.Status != 400 || !strings.Contains(r.Raw, "unknown, expired or already finished") {
		t.Errorf("callback without cookie: %d %.300s", r.Status, r.Raw)
	}
	if r := h.poll("demo-app", d.DeviceCode, k); r.Str("error") != CodeAuthorizationPending {
		t.Errorf("device code after a callback without cookie: %v", r.Body)
	}
	// After the record's 10 minutes: expired, even with the right state.
	h.clk.Add(loginStartTTL + time.Second)
	if r := callback(lc, q.Get("state")); r.Status != 400 || !strings.Contains(r.Raw, "unknown, expired or already finished") {
		t.Errorf("callback after expiry: %d %.300s", r.Status, r.Raw)
	}
	audit := h.audit.String()
	if strings.Contains(audit, q.Get("state")) || strings.Contains(audit, lc.Value) {
		t.Error("audit log holds the state or the login cookie")
	}
}

func TestApproveIdentity(t *testing.T) {
	h, _ := newLoginHarness(t)
	ctx := context.Background()
	for _, sub := range []string{"alice", "other:alice", ":x"} {
		d := h.authorize("demo-app", newKey(t))
		if err := h.s.ApproveIdentity(ctx, d.UserCode, sub, nil, "test"); !errors.Is(err, ErrUnknownUser) {
			t.Errorf("ApproveIdentity(%q) = %v, want ErrUnknownUser", sub, err)
		}
	}
	k := newKey(t)
	d := h.authorize("demo-app", k)
	if err := h.s.ApproveIdentity(ctx, d.UserCode, "corp:u1", []string{"admins"}, "test"); err != nil {
		t.Fatal(err)
	}
	r := h.poll("demo-app", d.DeviceCode, k)
	if r.Status != 200 {
		t.Fatalf("token: %d %s", r.Status, r.Raw)
	}
	c, err := h.s.AccessTokenVerifier().Verify(ctx, r.Str("access_token"))
	if err != nil || c.Subject != "corp:u1" || strings.Join(c.Groups, ",") != "admins" {
		t.Fatalf("access token claims = %+v, %v; want corp:u1 in admins", c, err)
	}
}
