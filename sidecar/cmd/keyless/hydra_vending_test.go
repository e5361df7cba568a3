package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Hydra's JWT access tokens (strategies.access_token: jwt) exchanged at
// keyless's vending service (vending.issuers): the test is the relying
// party of an authorization-code flow at a real Hydra, then leases with
// the token. A bearer token: exchanged once.
func TestHydraAccessTokenForLease(t *testing.T) {
	h := startHydra(t, "STRATEGIES_ACCESS_TOKEN=jwt")
	redirect := "http://127.0.0.1:9/cb" // never fetched: the test stops at the redirect
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	h.call(t, http.MethodPost, h.admin+"/admin/clients", map[string]any{
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
		"redirect_uris": []string{redirect}, "scope": "openid", "audience": []string{"keyless"},
		"token_endpoint_auth_method": "client_secret_basic",
	}, &c)

	// The authorization code flow, as an app would run it.
	b := newBrowser(t)
	q := url.Values{"client_id": {c.ClientID}, "response_type": {"code"}, "scope": {"openid"}, "audience": {"keyless"},
		"redirect_uri": {redirect}, "state": {"state-0123456789"}}
	login := b.follow(h.public+"/oauth2/auth?"+q.Encode(), h.loginURL)
	consent := b.follow(h.acceptLogin(t, query(t, login, "login_challenge"), "u-3003"), h.consentURL)
	var r struct {
		RedirectTo string `json:"redirect_to"`
	}
	h.call(t, http.MethodPut, h.admin+"/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(query(t, consent, "consent_challenge")),
		map[string]any{"grant_scope": []string{"openid"}, "grant_access_token_audience": []string{"keyless"}}, &r)
	cb := b.follow(r.RedirectTo, redirect)
	req, _ := http.NewRequest(http.MethodPost, h.public+"/oauth2/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {query(t, cb, "code")}, "redirect_uri": {redirect}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Count(tok.AccessToken, ".") != 2 {
		t.Fatalf("Hydra token: %d, a JWT access token: %v", resp.StatusCode, strings.Count(tok.AccessToken, ".") == 2)
	}

	// keyless trusts Hydra's access tokens for the app demo-app.
	dir := t.TempDir()
	cfg := fmt.Sprintf(`clients:
  - id: demo-app
    scopes: [api:read]
    default_scopes: [api:read]
vending:
  issuers:
    - name: hydra
      issuer: %q
      audience: keyless
      token_types: [access_token]
      any_client: true
      ignore_scope: true
policy:
  apps:
    demo-app:
      scopes:
        api:read: read
      rules:
        - name: hydra-user
          issuer: hydra
          subjects: [u-3003]
          scopes: [api:read]
`, h.issuer)
	cfgFile := filepath.Join(dir, "keyless.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	info, _, _ := startDev(t, filepath.Join(dir, "data"), "--config", cfgFile)
	s := &hydraSetup{hydra: h, info: info}
	d := &device{key: newKey(t)}
	status, l := s.leaseAs(t, d, tok.AccessToken, "urn:ietf:params:oauth:token-type:access_token")
	if status != 200 {
		t.Fatalf("lease with Hydra's access token: %d %v", status, l)
	}
	line := auditLine(t, info.DataDir, `"lease_id":"`+l["lease_id"].(string)+`"`)
	for _, want := range []string{`"sub":"u-3003"`, `"issuer":"hydra"`, `"rule":"hydra-user"`} {
		if !strings.Contains(line, want) {
			t.Errorf("lease audit line lacks %s: %s", want, line)
		}
	}
	// A bearer subject token mints one lease: a second key cannot reuse it.
	d2 := &device{key: newKey(t)}
	if status, l := s.leaseAs(t, d2, tok.AccessToken, "urn:ietf:params:oauth:token-type:access_token"); status != 400 || l["error"] != "invalid_grant" {
		t.Errorf("Hydra's bearer token leased twice: %v", l)
	}
}
