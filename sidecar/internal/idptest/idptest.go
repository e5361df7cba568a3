// Package idptest starts a real OpenID Provider for tests: npm
// oidc-provider (oidc-provider.mjs beside this file, installed by `npm
// ci`) on a free loopback port, and drives its device flow over HTTP the
// way a user and a device would, so tests get real ID tokens and JWT
// access tokens, bearer or DPoP-bound.
//
// # Use
//
//	p := idptest.Start(t)                        // torn down by t.Cleanup
//	tok := p.DeviceFlow(t, idptest.Flow{Login: "alice", DPoP: key})
//	tok.AccessToken   // RFC 9068 JWT, ES256, aud "urn:keyless", cnf.jkt of key
//	tok.IDToken       // RS256, aud "demo-app", groups and email claims
//
// The provider's accounts: alice (groups ops-team and staff,
// email_verified) and bob (group staff, email not verified); its client:
// demo-app (public, device flow). See docs/identity-providers.md for the
// keyless configuration that trusts it.
package idptest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/keyless-dev/keyless/sidecar/internal/nodetest"
)

// Fixed values of the provider started by Start.
const (
	ClientID = "demo-app"
	Resource = "urn:keyless"
)

// Provider is a running oidc-provider.
type Provider struct {
	// Issuer is its issuer URL (http://127.0.0.1:PORT).
	Issuer string
	// Metadata is its discovery document.
	Metadata struct {
		DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
		TokenEndpoint               string `json:"token_endpoint"`
		JWKSURI                     string `json:"jwks_uri"`
	}
	client *http.Client
}

// Options configure [StartWith]; zero values are the defaults.
type Options struct {
	// CORSOrigins are page origins allowed to call the provider from a
	// browser; none by default.
	CORSOrigins []string
	// TTL is the lifetime of its access and ID tokens; zero means 10
	// minutes.
	TTL time.Duration
}

// Start runs the provider with the default Options; it stops when the
// test ends. Without Node or `npm ci` the test is skipped (failed under
// CI), as nodetest.Require does.
func Start(t testing.TB) *Provider {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith runs the provider configured by o.
func StartWith(t testing.TB, o Options) *Provider {
	t.Helper()
	nodetest.Require(t, "oidc-provider", "jose")
	script := filepath.Join(nodetest.Root(t), "sidecar", "internal", "idptest", "oidc-provider.mjs")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Env = append(os.Environ(), "NODE_NO_WARNINGS=1", "IDPTEST_CORS_ORIGINS="+strings.Join(o.CORSOrigins, ","))
	if o.TTL > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("IDPTEST_TTL=%d", int(o.TTL/time.Second)))
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the script exits when stdin closes
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cancel() // kills the process we started
			<-done
		}
		cancel()
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	p := &Provider{}
	select {
	case l, ok := <-line:
		if !ok || json.Unmarshal([]byte(l), &struct {
			Issuer *string `json:"issuer"`
		}{&p.Issuer}) != nil || p.Issuer == "" {
			t.Fatalf("idptest: oidc-provider did not start: %q\nstderr:\n%s", l, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("idptest: oidc-provider did not start within 30 s\nstderr:\n%s", stderr.String())
	}
	p.client = &http.Client{Timeout: 10 * time.Second}
	resp, err := p.client.Get(p.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&p.Metadata); err != nil {
		t.Fatal(err)
	}
	return p
}

// Flow describes one device-flow sign-in.
type Flow struct {
	// Login is the account that approves; empty means "alice".
	Login string
	// DPoP, when set, binds the access token to this key (proofs at the
	// token endpoint); nil gets a bearer access token.
	DPoP dpop.Signer
	// Scope; empty means "openid email groups".
	Scope string
}

// Tokens is the token endpoint's answer.
type Tokens struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

var xsrfRE = regexp.MustCompile(`name="xsrf" value="([^"]+)"`)

// DeviceFlow runs the device authorization grant (RFC 8628) end to end:
// device authorization request for Resource, the user's visit to the
// verification URI (code entry and confirmation through the provider's
// own forms; sign-in as f.Login), then the device's token request.
//
// https://www.rfc-editor.org/rfc/rfc8628#section-3
func (p *Provider) DeviceFlow(t testing.TB, f Flow) *Tokens {
	t.Helper()
	if f.Login == "" {
		f.Login = "alice"
	}
	if f.Scope == "" {
		f.Scope = "openid email groups"
	}
	// A fresh browser for every sign-in: no session carries over.
	jar, _ := cookiejar.New(nil)
	p.client.Jar = jar
	if r := p.post(t, p.Issuer+"/test/login", "application/json", fmt.Sprintf(`{"sub":%q}`, f.Login), nil); r.StatusCode != 204 {
		t.Fatalf("idptest: set login: %d", r.StatusCode)
	}
	var da struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
		URIDone    string `json:"verification_uri_complete"`
	}
	p.postJSON(t, p.Metadata.DeviceAuthorizationEndpoint, url.Values{
		"client_id": {ClientID}, "scope": {f.Scope}, "resource": {Resource},
	}, nil, &da)

	// The user: open the verification URI (a self-posting form), submit
	// it, then confirm.
	page := p.get(t, da.URIDone)
	m := xsrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("idptest: no xsrf on the verification page:\n%s", page)
	}
	form := url.Values{"xsrf": {m[1]}, "user_code": {da.UserCode}}
	page = p.form(t, p.Issuer+"/device", form)
	if m = xsrfRE.FindStringSubmatch(page); m == nil {
		t.Fatalf("idptest: no confirmation form:\n%s", page)
	}
	form.Set("xsrf", m[1])
	form.Set("confirm", "yes")
	if page = p.form(t, p.Issuer+"/device", form); !strings.Contains(page, "Sign-in Success") {
		t.Fatalf("idptest: device sign-in did not succeed:\n%s", page)
	}

	// The device: redeem the device code.
	var tok Tokens
	hdr := http.Header{}
	if f.DPoP != nil {
		proof, err := dpop.NewProof(f.DPoP, http.MethodPost, p.Metadata.TokenEndpoint, dpop.ProofOptions{Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		hdr.Set("DPoP", proof)
	}
	p.postJSON(t, p.Metadata.TokenEndpoint, url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da.DeviceCode},
		"client_id": {ClientID},
	}, hdr, &tok)
	return &tok
}

func (p *Provider) post(t testing.TB, u, ct, body string, hdr http.Header) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", ct)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func (p *Provider) postJSON(t testing.TB, u string, form url.Values, hdr http.Header, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("idptest: POST %s: %d %s", u, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("idptest: POST %s: %v", u, err)
	}
}

func (p *Provider) get(t testing.TB, u string) string {
	t.Helper()
	resp, err := p.client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (p *Provider) form(t testing.TB, u string, f url.Values) string {
	t.Helper()
	resp, err := p.client.PostForm(u, f)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
