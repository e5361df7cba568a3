package main

// /device sign-in delegated to a real Ory Hydra v2.3.0 (login.oidc), driven
// over HTTP: a cookie-jar client plays the browser, the test plays Hydra's
// login and consent app through its admin API. Hydra is built from the
// separate module tools/hydra (make hydra, or .ci/deps).

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/lease"
)

// needHydra returns the hydra binary: $KEYLESS_HYDRA, or .cache/bin/hydra
// under the repository. Missing, the test skips, except in CI, where it
// fails: CI must run it.
func needHydra(t *testing.T) string {
	t.Helper()
	p := os.Getenv("KEYLESS_HYDRA")
	if p == "" {
		p = filepath.Join(repoRoot(t), ".cache", "bin", "hydra")
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("hydra binary %s is missing in CI: .ci/deps builds it (make hydra)", p)
		}
		t.Skipf("hydra binary %s is missing: run `make hydra` (builds Ory Hydra v2.3.0 from tools/hydra)", p)
	}
	return p
}

// freeAddrs returns n distinct free loopback addresses: all are held open
// until the last is chosen, so two calls cannot return one port.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out = append(out, ln.Addr().String())
	}
	return out
}

// hydra is a running `hydra serve all --dev` with an in-memory database.
type hydra struct {
	public, admin string // base URLs
	issuer        string // as its discovery document spells it
	// loginURL and consentURL are where Hydra sends the browser; nothing
	// listens there: the test stops at the redirect and answers through
	// the admin API, as a login app would.
	loginURL, consentURL string
}

// startHydra starts Hydra; env adds settings (KEY=value).
func startHydra(t *testing.T, env ...string) *hydra {
	t.Helper()
	bin := needHydra(t)
	addrs := freeAddrs(t, 2)
	pub, adm := addrs[0], addrs[1]
	h := &hydra{public: "http://" + pub, admin: "http://" + adm,
		loginURL: "http://127.0.0.1:9/login", consentURL: "http://127.0.0.1:9/consent"}
	_, pubPort, _ := strings.Cut(pub, ":")
	_, admPort, _ := strings.Cut(adm, ":")
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Env = append(os.Environ(),
		"DSN=memory",
		"SERVE_PUBLIC_HOST=127.0.0.1", "SERVE_PUBLIC_PORT="+pubPort,
		"SERVE_ADMIN_HOST=127.0.0.1", "SERVE_ADMIN_PORT="+admPort,
		"URLS_SELF_ISSUER="+h.public, "URLS_LOGIN="+h.loginURL, "URLS_CONSENT="+h.consentURL,
		"SECRETS_SYSTEM="+strings.Repeat("k", 32)+fmt.Sprint(time.Now().UnixNano()),
		"LOG_LEVEL=error",
	)
	cmd.Env = append(cmd.Env, env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("hydra output:\n%s", logs.String())
		}
	})
	// Bounded wait for the admin API (an external process: no clock to
	// inject); 300 x 100 ms.
	for i := 0; ; i++ {
		resp, err := http.Get(h.admin + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-exited:
			t.Fatal("hydra exited before it became ready")
		case <-time.After(100 * time.Millisecond):
		}
		if i == 300 {
			t.Fatalf("hydra did not become ready: %v", err)
		}
	}
	var disc struct {
		Issuer string `json:"issuer"`
	}
	h.call(t, http.MethodGet, h.public+"/.well-known/openid-configuration", nil, &disc)
	h.issuer = disc.Issuer
	return h
}

// call sends JSON and decodes a 2xx JSON answer into out.
func (h *hydra) call(t *testing.T, method, u string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, body)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, u, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
	}
}

// createClient registers keyless as a confidential client of Hydra.
func (h *hydra) createClient(t *testing.T, redirect string) (id, secret string) {
	t.Helper()
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	h.call(t, http.MethodPost, h.admin+"/admin/clients", map[string]any{
		"client_name": "keyless", "grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
		"redirect_uris": []string{redirect}, "scope": "openid profile email",
		"token_endpoint_auth_method": "client_secret_basic",
	}, &c)
	if c.ClientID == "" || c.ClientSecret == "" {
		t.Fatal("hydra created a client without id or secret")
	}
	return c.ClientID, c.ClientSecret
}

// acceptLogin answers a login challenge with subject; rejectLogin refuses
// it. Each returns where Hydra sends the browser next.
func (h *hydra) acceptLogin(t *testing.T, challenge, subject string) string {
	var r struct {
		RedirectTo string `json:"redirect_to"`
	}
	h.call(t, http.MethodPut, h.admin+"/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(challenge),
		map[string]any{"subject": subject}, &r)
	return r.RedirectTo
}

func (h *hydra) rejectLogin(t *testing.T, challenge string) string {
	var r struct {
		RedirectTo string `json:"redirect_to"`
	}
	h.call(t, http.MethodPut, h.admin+"/admin/oauth2/auth/requests/login/reject?login_challenge="+url.QueryEscape(challenge),
		map[string]any{"error": "access_denied", "error_description": "the user said no"}, &r)
	return r.RedirectTo
}

// acceptConsent grants openid and profile and puts groups in the ID token.
func (h *hydra) acceptConsent(t *testing.T, challenge string, groups []string) string {
	var r struct {
		RedirectTo string `json:"redirect_to"`
	}
	h.call(t, http.MethodPut, h.admin+"/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(challenge),
		map[string]any{"grant_scope": []string{"openid", "profile"},
			"session": map[string]any{"id_token": map[string]any{"groups": groups}}}, &r)
	return r.RedirectTo
}

// browser is a cookie-jar client that does not follow redirects, so the
// test sees every hop.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request and returns status, Location and body.
func (b *browser) do(method, u string, form url.Values) (int, string, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	loc := resp.Header.Get("Location")
	if loc != "" {
		base, _ := url.Parse(u)
		if l, err := base.Parse(loc); err == nil {
			loc = l.String()
		}
	}
	return resp.StatusCode, loc, string(raw)
}

// follow GETs u and its redirects until one leads to a URL starting with
// stop (returned, not fetched); at most 10 hops.
func (b *browser) follow(u, stop string) string {
	b.t.Helper()
	for range 10 {
		if strings.HasPrefix(u, stop) {
			return u
		}
		status, loc, body := b.do(http.MethodGet, u, nil)
		if loc == "" {
			b.t.Fatalf("GET %s: %d without a redirect toward %s: %.300s", u, status, stop, body)
		}
		u = loc
	}
	b.t.Fatalf("too many redirects toward %s", stop)
	return ""
}

var (
	csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	loginLink = regexp.MustCompile(`href="(/device/login\?[^"]+)">Sign in with corp<`)
)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in page: %.500s", page)
	}
	return m[1]
}

func query(t *testing.T, u, name string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil || p.Query().Get(name) == "" {
		t.Fatalf("%s has no %s", u, name)
	}
	return p.Query().Get(name)
}

// hydraSetup is keyless dev with a login.oidc provider "corp" at Hydra and
// a policy whose write rule names the group "admins".
type hydraSetup struct {
	hydra   *hydra
	info    devInfo
	cfgFile string
}

func startHydraSetup(t *testing.T) *hydraSetup {
	t.Helper()
	h := startHydra(t)
	addr := freeAddr(t)
	issuer := "http://" + addr
	id, secret := h.createClient(t, issuer+"/device/callback")
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "corp.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`clients:
  - id: demo-app
    scopes: [api:read, api:write]
    default_scopes: [api:read]
login:
  oidc:
    - name: corp
      issuer: %q
      client_id: %q
      client_secret_file: %q
      scopes: [openid, profile]
      groups_claim: groups
      group_map:
        hydra-admins: admins
policy:
  apps:
    demo-app:
      scopes:
        api:read: read
        api:write: write
      rules:
        - name: admins-write
          groups: [admins]
          scopes: [api:read, api:write]
          write: true
        - name: everyone-read
          subjects: ["*"]
          scopes: [api:read]
`, h.issuer, id, secretFile)
	cfgFile := filepath.Join(dir, "keyless.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	info, _, _ := startDev(t, filepath.Join(dir, "data"), "--config", cfgFile, "--issuer-addr", addr)
	return &hydraSetup{hydra: h, info: info, cfgFile: cfgFile}
}

// device is a device-flow client of keyless with its DPoP key.
type device struct {
	key      dpop.Signer
	code     string
	userCode string
	verify   string // verification_uri_complete
}

func (s *hydraSetup) startDevice(t *testing.T) *device {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := dpop.NewECDSASigner(k)
	resp, err := http.PostForm(s.info.IssuerURL+"/device_authorization",
		url.Values{"client_id": {"demo-app"}, "scope": {"api:read api:write"}, "dpop_jkt": {signer.PublicJWK().Thumbprint()}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
		Complete   string `json:"verification_uri_complete"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("device authorization: %d %v", resp.StatusCode, err)
	}
	return &device{key: signer, code: m.DeviceCode, userCode: m.UserCode, verify: m.Complete}
}

// poll asks for the token once; it returns the JSON answer and status.
func (s *hydraSetup) poll(t *testing.T, d *device) (int, map[string]any) {
	t.Helper()
	u := s.info.IssuerURL + "/token"
	proof, err := dpop.NewProof(d.key, http.MethodPost, u, dpop.ProofOptions{})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {d.code}, "client_id": {"demo-app"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", proof)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// lease exchanges the device flow's access token for a lease of scope.
func (s *hydraSetup) lease(t *testing.T, d *device, accessToken, scope string) (int, map[string]any) {
	t.Helper()
	return s.vend(t, d, map[string]any{"subject_token": accessToken, "client_id": "demo-app", "scope": scope})
}

// leaseAs leases with a subject token of the given RFC 8693 type.
func (s *hydraSetup) leaseAs(t *testing.T, d *device, subjectToken, tokenType string) (int, map[string]any) {
	t.Helper()
	return s.vend(t, d, map[string]any{"subject_token": subjectToken, "subject_token_type": tokenType, "client_id": "demo-app"})
}

// vend POSTs body to the lease endpoint with a proof of d's key.
func (s *hydraSetup) vend(t *testing.T, d *device, req map[string]any) (int, map[string]any) {
	t.Helper()
	u := s.info.IssuerURL + lease.PathLease
	proof, err := dpop.NewProof(d.key, http.MethodPost, u, dpop.ProofOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(req)
	hreq, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("DPoP", proof)
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// signInStart opens the QR link, follows "Sign in with corp" and follows
// the redirects to Hydra's login app; it returns the login challenge.
func (s *hydraSetup) signInStart(t *testing.T, b *browser, d *device) (challenge, authURL string) {
	t.Helper()
	return s.signInStartEdit(t, b, d, nil)
}

// signInStartEdit is signInStart with edit applied to the authorization
// request's query before the browser follows it (an attacker's edit).
func (s *hydraSetup) signInStartEdit(t *testing.T, b *browser, d *device, edit func(url.Values)) (challenge, authURL string) {
	t.Helper()
	status, _, page := b.do(http.MethodGet, d.verify, nil)
	if status != 200 || !strings.Contains(page, "Sign in with corp") {
		t.Fatalf("consent page: %d %.400s", status, page)
	}
	m := loginLink.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in link on the consent page: %.500s", page)
	}
	status, loc, page := b.do(http.MethodGet, s.info.IssuerURL+html.UnescapeString(m[1]), nil)
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, s.hydra.public) {
		t.Fatalf("sign in: %d %s %.300s", status, loc, page)
	}
	for _, p := range []string{"state", "nonce", "code_challenge"} {
		query(t, loc, p)
	}
	if query(t, loc, "code_challenge_method") != "S256" {
		t.Fatal("PKCE method is not S256")
	}
	if edit != nil {
		u, _ := url.Parse(loc)
		q := u.Query()
		edit(q)
		u.RawQuery = q.Encode()
		loc = u.String()
	}
	login := b.follow(loc, s.hydra.loginURL)
	return query(t, login, "login_challenge"), loc
}

// toCallback accepts login and consent at Hydra and returns keyless's
// callback URL (not yet fetched).
func (s *hydraSetup) toCallback(t *testing.T, b *browser, challenge, subject string, groups []string) string {
	t.Helper()
	consent := b.follow(s.hydra.acceptLogin(t, challenge, subject), s.hydra.consentURL)
	return b.follow(s.hydra.acceptConsent(t, query(t, consent, "consent_challenge"), groups), s.info.IssuerURL+"/device/callback")
}

// approve loads the callback and approves on the consent page that follows.
func (s *hydraSetup) approve(t *testing.T, b *browser, d *device, callback, wantSubject string) {
	t.Helper()
	status, _, page := b.do(http.MethodGet, callback, nil)
	if status != 200 || !strings.Contains(page, "Signed in as <strong>"+wantSubject+"</strong>") {
		t.Fatalf("callback: %d %.600s", status, page)
	}
	// The page is at the callback URL; its form posts to /device.
	if !strings.Contains(page, `<form method="post" action="/device">`) {
		t.Fatalf("the consent form after sign-in does not post to /device: %.600s", page)
	}
	status, _, page = b.do(http.MethodPost, s.info.IssuerURL+"/device",
		url.Values{"csrf": {csrfOf(t, page)}, "user_code": {d.userCode}, "action": {"approve_login"}})
	if status != 200 || !strings.Contains(page, "is now connected") {
		t.Fatalf("approve: %d %.600s", status, page)
	}
}

func TestDeviceLoginThroughHydra(t *testing.T) {
	s := startHydraSetup(t)

	t.Run("admin group may write", func(t *testing.T) {
		d := s.startDevice(t)
		b := newBrowser(t)
		challenge, _ := s.signInStart(t, b, d)
		cb := s.toCallback(t, b, challenge, "u-1001", []string{"hydra-admins", "hydra-unmapped"})
		s.approve(t, b, d, cb, "corp:u-1001")
		status, tok := s.poll(t, d)
		if status != 200 || tok["token_type"] != "DPoP" {
			t.Fatalf("token: %d %v", status, tok)
		}
		status, l := s.lease(t, d, tok["access_token"].(string), "api:write")
		if status != 200 || !strings.Contains(fmt.Sprint(l["scope"]), "api:write") {
			t.Fatalf("write lease: %d %v", status, l)
		}
		// The lease's groups came from Hydra's claim through group_map
		// (hydra-unmapped dropped), and the admins rule decided.
		line := auditLine(t, s.info.DataDir, `"lease_id":"`+l["lease_id"].(string)+`"`)
		for _, want := range []string{`"sub":"corp:u-1001"`, `"groups":"admins"`, `"rule":"admins-write"`} {
			if !strings.Contains(line, want) {
				t.Errorf("lease audit line lacks %s: %s", want, line)
			}
		}
	})

	t.Run("doctor checks the provider", func(t *testing.T) {
		out, _ := runDoctorCLI(nil, "--config", s.cfgFile, "--issuer", s.info.IssuerURL)
		if l := reportLine(out, "login corp"); !strings.HasPrefix(l, "OK") || !strings.Contains(l, s.info.IssuerURL+"/device/callback") {
			t.Errorf("doctor line for login corp: %q\n%s", l, out)
		}
		b, _ := os.ReadFile(s.cfgFile)
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		_ = os.WriteFile(bad, bytes.Replace(b, []byte(s.hydra.issuer), []byte(strings.TrimSuffix(s.hydra.issuer, "/")+"/wrong"), 1), 0o600)
		out, _ = runDoctorCLI(nil, "--config", bad, "--issuer", s.info.IssuerURL)
		if l := reportLine(out, "login corp"); !strings.HasPrefix(l, "FAIL") {
			t.Errorf("doctor line for a wrong issuer: %q", l)
		}
	})

	t.Run("no mapped group may only read", func(t *testing.T) {
		d := s.startDevice(t)
		b := newBrowser(t)
		challenge, _ := s.signInStart(t, b, d)
		s.approve(t, b, d, s.toCallback(t, b, challenge, "u-2002", []string{"hydra-unmapped"}), "corp:u-2002")
		_, tok := s.poll(t, d)
		at, _ := tok["access_token"].(string)
		if status, l := s.lease(t, d, at, "api:write"); status != 400 || l["error"] != "invalid_scope" {
			t.Errorf("write lease without the group: %d %v", status, l)
		}
		if status, l := s.lease(t, d, at, "api:read"); status != 200 {
			t.Errorf("read lease: %d %v", status, l)
		}
	})
}

// Each failed sign-in renders an error page and leaves the device code
// pending: nothing is approved.
func TestDeviceLoginThroughHydraRefusals(t *testing.T) {
	s := startHydraSetup(t)
	other, _ := s.hydra.createClient(t, s.info.IssuerURL+"/device/callback")
	pending := func(t *testing.T, d *device) {
		t.Helper()
		if status, m := s.poll(t, d); status != 400 || m["error"] != "authorization_pending" {
			t.Errorf("device code after the refusal: %d %v, want authorization_pending", status, m)
		}
	}
	setState := func(u, state string) string {
		p, _ := url.Parse(u)
		q := p.Query()
		q.Set("state", state)
		p.RawQuery = q.Encode()
		return p.String()
	}
	tests := []struct {
		name string
		// run drives one sign-in and returns the callback page's status
		// and body.
		run        func(t *testing.T, b *browser, d *device) (int, string)
		wantStatus int
		wantText   string
	}{
		{"state mismatch", func(t *testing.T, b *browser, d *device) (int, string) {
			c, _ := s.signInStart(t, b, d)
			cb := s.toCallback(t, b, c, "u-1", []string{"hydra-admins"})
			status, _, page := b.do(http.MethodGet, setState(cb, "forged-state"), nil)
			return status, page
		}, 400, "does not belong to this browser"},
		{"callback without the browser's cookie", func(t *testing.T, b *browser, d *device) (int, string) {
			c, _ := s.signInStart(t, b, d)
			cb := s.toCallback(t, b, c, "u-1", []string{"hydra-admins"})
			status, _, page := newBrowser(t).do(http.MethodGet, cb, nil)
			return status, page
		}, 400, "unknown, expired or already finished"},
		{"callback replayed", func(t *testing.T, b *browser, d *device) (int, string) {
			c, _ := s.signInStart(t, b, d)
			cb := s.toCallback(t, b, c, "u-1", []string{"hydra-admins"})
			if status, _, page := b.do(http.MethodGet, cb, nil); status != 200 {
				t.Fatalf("first callback: %d %.300s", status, page)
			}
			status, _, page := b.do(http.MethodGet, cb, nil)
			return status, page
		}, 400, "unknown, expired or already finished"},
		{"nonce mismatch", func(t *testing.T, b *browser, d *device) (int, string) {
			c, _ := s.signInStartEdit(t, b, d, func(q url.Values) { q.Set("nonce", "attacker-nonce-0123456789") })
			status, _, page := b.do(http.MethodGet, s.toCallback(t, b, c, "u-1", []string{"hydra-admins"}), nil)
			return status, page
		}, 403, "could not be verified"},
		{"code issued to another client", func(t *testing.T, b *browser, d *device) (int, string) {
			c, _ := s.signInStartEdit(t, b, d, func(q url.Values) { q.Set("client_id", other) })
			status, _, page := b.do(http.MethodGet, s.toCallback(t, b, c, "u-1", []string{"hydra-admins"}), nil)
			return status, page
		}, 403, "could not be verified"},
		{"IdP error callback", func(t *testing.T, b *browser, d *device) (int, string) {
			c, _ := s.signInStart(t, b, d)
			cb := b.follow(s.hydra.rejectLogin(t, c), s.info.IssuerURL+"/device/callback")
			status, _, page := b.do(http.MethodGet, cb, nil)
			return status, page
		}, 403, "did not sign you in (access_denied)"},
		{"forged IdP error with another state", func(t *testing.T, b *browser, d *device) (int, string) {
			s.signInStart(t, b, d)
			status, _, page := b.do(http.MethodGet, s.info.IssuerURL+"/device/callback?error=access_denied&state=x", nil)
			return status, page
		}, 400, "does not belong to this browser"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := s.startDevice(t)
			status, page := tt.run(t, newBrowser(t), d)
			if status != tt.wantStatus || !strings.Contains(page, tt.wantText) {
				t.Errorf("callback page: %d, want %d with %q: %.500s", status, tt.wantStatus, tt.wantText, page)
			}
			if strings.Contains(page, "approve_login") {
				t.Error("the error page offers approval")
			}
			pending(t, d)
		})
	}
}

// auditLine returns the audit.log line containing needle.
//
// The audit log is written through a queue (docs/audit.md), so a line may
// land a moment after the answer that caused it: wait up to 10 s for it.
func auditLine(t *testing.T, dataDir, needle string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dataDir, auditLogFile))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, needle) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit line with %s", needle)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
