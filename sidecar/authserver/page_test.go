package authserver

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// openConsent GETs verification_uri_complete and returns the CSRF cookie
// and form token.
func openConsent(t *testing.T, h *harness, userCode string) (*http.Cookie, string, result) {
	t.Helper()
	r := h.get("/device?user_code=" + url.QueryEscape(userCode))
	if r.status != 200 {
		t.Fatalf("consent page: %d %s", r.status, r.raw)
	}
	var c *http.Cookie
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == csrfCookie {
			c = ck
		}
	}
	m := csrfRe.FindStringSubmatch(r.raw)
	if c == nil || m == nil {
		t.Fatalf("no CSRF cookie/token: %v", r.header)
	}
	return c, m[1], r
}

func (h *harness) pagePost(form url.Values, cookie *http.Cookie, hdr ...string) result {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/device", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return h.do(req)
}

// docs/security.md#device-flow: opening verification_uri_complete approves nothing; the page
// shows the code, the app and a warning; frame-ancestors 'none'.
func TestVerificationURICompleteGETApprovesNothing(t *testing.T) {
	h := newHarness(t, nil)
	k := newKey(t)
	d := h.authorize("demo-app", k)
	_, _, r := openConsent(t, h, d.UserCode)
	for _, want := range []string{d.UserCode, "Demo micro app", "demo-app", "api:read", "You are authorizing a device", `<label for="password">`, `lang="en"`} {
		if !strings.Contains(r.raw, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	if r.header.Get("X-Frame-Options") != "DENY" || r.header.Get("Referrer-Policy") != "no-referrer" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers = %v", r.header)
	}
	h.clk.add(time.Minute)
	wantErr(t, h.poll("demo-app", d.DeviceCode, k), 400, CodeAuthorizationPending)
}

func TestDevicePageCSRF(t *testing.T) {
	h := newHarness(t, nil)
	k := newKey(t)
	d := h.authorize("demo-app", k)
	cookie, tok, _ := openConsent(t, h, d.UserCode)
	good := url.Values{"csrf": {tok}, "user_code": {d.UserCode}, "username": {"alice"}, "password": {testPassword}, "action": {"approve"}}
	without := func(k string) url.Values {
		v := url.Values{}
		for a, b := range good {
			if a != k {
				v[a] = b
			}
		}
		return v
	}
	wrongTok := without("csrf")
	wrongTok.Set("csrf", strings.Repeat("A", 43))

	tests := []struct {
		name   string
		form   url.Values
		cookie *http.Cookie
		hdr    []string
		status int
	}{
		{"no csrf token", without("csrf"), cookie, nil, 403},
		{"no cookie", good, nil, nil, 403},
		{"wrong token", wrongTok, cookie, nil, 403},
		{"cross-site fetch", good, cookie, []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"foreign origin", good, cookie, []string{"Origin", "https://evil.example"}, 403},
		{"wrong content type", good, cookie, []string{"Content-Type", "application/json"}, 415},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.pagePost(tc.form, tc.cookie, tc.hdr...)
			if r.status != tc.status {
				t.Errorf("status = %d, want %d", r.status, tc.status)
			}
			h.clk.add(time.Minute)
			wantErr(t, h.poll("demo-app", d.DeviceCode, k), 400, CodeAuthorizationPending)
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		f := without("password")
		f.Set("password", "nope")
		if r := h.pagePost(f, cookie); r.status != 401 || !strings.Contains(r.raw, "Wrong user name or password") {
			t.Errorf("wrong password: %d", r.status)
		}
	})
	t.Run("same-origin approve", func(t *testing.T) {
		r := h.pagePost(good, cookie, "Sec-Fetch-Site", "same-origin", "Origin", h.srv.URL)
		if r.status != 200 || !strings.Contains(r.raw, "is now connected") {
			t.Fatalf("approve: %d %s", r.status, r.raw)
		}
		h.clk.add(time.Minute)
		if r := h.poll("demo-app", d.DeviceCode, k); r.status != 200 {
			t.Errorf("poll after approve: %d %s", r.status, r.raw)
		}
	})
	t.Run("deny", func(t *testing.T) {
		d := h.authorize("demo-app", k)
		cookie, tok, _ := openConsent(t, h, d.UserCode)
		r := h.pagePost(url.Values{"csrf": {tok}, "user_code": {d.UserCode}, "action": {"deny"}}, cookie)
		if r.status != 200 || !strings.Contains(r.raw, "denied") {
			t.Fatalf("deny: %d", r.status)
		}
		wantErr(t, h.poll("demo-app", d.DeviceCode, k), 400, CodeAccessDenied)
	})
}

// docs/security.md#device-flow: bcdf-ghjk, BCDF GHJK, BCDFGHJK resolve to the same code;
// BCDF-GHJ is invalid.
func TestUserCodeNormalization(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"BCDF-GHJK", "BCDFGHJK", true},
		{"bcdf-ghjk", "BCDFGHJK", true},
		{"BCDF GHJK", "BCDFGHJK", true},
		{"BCDFGHJK", "BCDFGHJK", true},
		{" bcdf_ghjk ", "BCDFGHJK", true},
		{"BCDF-GHJ", "", false},
		{"BCDF-GHJKL", "", false},
		{"BCDF-GHJA", "", false}, // vowel: not in the alphabet
		{"BCDF-GHJ0", "", false},
		{"ＢCDF-GHJK", "", false}, // fullwidth
		{strings.Repeat("B", 100), "", false},
	}
	for _, tc := range tests {
		got, ok := normalizeUserCode(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("normalizeUserCode(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	// Through HTTP: every spelling opens the same request.
	h := newHarness(t, nil)
	d := h.authorize("demo-app", nil)
	raw := strings.ReplaceAll(d.UserCode, "-", "")
	for _, spelled := range []string{strings.ToLower(d.UserCode), raw[:4] + " " + raw[4:], raw} {
		if r := h.get("/device?user_code=" + url.QueryEscape(spelled)); r.status != 200 || !strings.Contains(r.raw, d.UserCode) {
			t.Errorf("%q: %d", spelled, r.status)
		}
	}
	if r := h.get("/device?user_code=" + raw[:7]); r.status != 400 {
		t.Errorf("7 chars: %d", r.status)
	}
}

func TestUserCodeAlphabetAndUniformity(t *testing.T) {
	seen := map[byte]int{}
	for range 2000 {
		c, err := newUserCode()
		if err != nil || len(c) != 8 {
			t.Fatalf("newUserCode = %q, %v", c, err)
		}
		for i := range len(c) {
			seen[c[i]]++
		}
	}
	if len(seen) != 20 {
		t.Errorf("saw %d distinct characters, want all 20", len(seen))
	}
	for ch, n := range seen {
		if !strings.ContainsRune(userCodeAlphabet, rune(ch)) || n < 500 || n > 1100 { // expectation 800
			t.Errorf("char %c appeared %d times", ch, n)
		}
	}
}

// docs/security.md#device-flow: the 6th wrong user_code within the window from one source
// -> 429 with Retry-After, even for a correct code from that source.
// (Budgets by source and the absence of a global lockout: limit_test.go.)
func TestUserCodeGuessingLimit(t *testing.T) {
	h := newHarness(t, nil)
	d := h.authorize("demo-app", nil)
	for i := range 5 {
		if r := h.get("/device?user_code=BBBB-BBB" + string(userCodeAlphabet[i+1])); r.status != 400 {
			t.Fatalf("wrong guess %d: %d", i+1, r.status)
		}
	}
	r := h.get("/device?user_code=BBBB-BBBZ")
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("6th guess: %d", r.status)
	}
	if r = h.get("/device?user_code=" + d.UserCode); r.status != http.StatusTooManyRequests {
		t.Errorf("correct code while limited: %d", r.status)
	}
	// The POST path is limited too.
	if r = h.pagePost(url.Values{"user_code": {d.UserCode}}, nil); r.status != 403 && r.status != 429 {
		t.Errorf("POST while limited: %d", r.status)
	}
	h.clk.add(10 * time.Minute)
	d = h.authorize("demo-app", nil)
	if r = h.get("/device?user_code=" + d.UserCode); r.status != 200 {
		t.Errorf("after the window: %d", r.status)
	}
}

func TestAdminAPI(t *testing.T) {
	h := newHarness(t, nil)
	d := h.authorize("demo-app", nil)
	call := func(path, body, tok string) result {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		return h.do(req)
	}
	body := `{"user_code":"` + strings.ToLower(d.UserCode) + `","subject":"alice"}`
	if r := call("/admin/v1/device/approve", body, ""); r.status != 401 {
		t.Errorf("no token: %d", r.status)
	}
	if r := call("/admin/v1/device/approve", body, "admin-secret-tokeX"); r.status != 401 {
		t.Errorf("wrong token: %d", r.status)
	}
	if r := call("/admin/v1/device/approve", `{"user_code":"`+d.UserCode+`","subject":"bob"}`, "admin-secret-token"); r.status != 400 {
		t.Errorf("unknown user: %d %s", r.status, r.raw)
	}
	if r := call("/admin/v1/device/approve", `{"user_code":"BBBB-BBBB","subject":"alice"}`, "admin-secret-token"); r.status != 404 {
		t.Errorf("unknown code: %d", r.status)
	}
	if r := call("/admin/v1/device/approve", `{"user_code":1}`, "admin-secret-token"); r.status != 400 {
		t.Errorf("bad body: %d", r.status)
	}
	if r := call("/admin/v1/device/approve", body, "admin-secret-token"); r.status != 200 || r.str("status") != "approved" {
		t.Errorf("approve: %d %s", r.status, r.raw)
	}
	if r := call("/admin/v1/device/deny", body, "admin-secret-token"); r.status != 409 {
		t.Errorf("deny after approve: %d", r.status)
	}
	old := h.s.Keys().Keys()[0].KID
	r := call("/admin/v1/keys/rotate", "", "admin-secret-token")
	if r.status != 200 || r.str("kid") == old || r.str("kid") == "" {
		t.Errorf("rotate: %d %s", r.status, r.raw)
	}
	if j := h.get("/jwks.json"); !strings.Contains(j.raw, old) || !strings.Contains(j.raw, r.str("kid")) {
		t.Errorf("JWKS after rotate lacks a key: %s", j.raw)
	}
	_ = context.Background()
}
