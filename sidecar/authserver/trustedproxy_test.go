package authserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyless-dev/keyless/sidecar/ratelimit"
)

// behindProxy trusts the harness's own address, 127.0.0.1, as a reverse
// proxy (issuer.trusted_proxies).
func behindProxy(extra func(*Options)) func(*Options) {
	return func(o *Options) {
		o.Config.Issuer.TrustedProxies = []string{"127.0.0.1"}
		if extra != nil {
			extra(o)
		}
	}
}

// Without issuer.trusted_proxies, X-Forwarded-For and Forwarded are
// ignored: a client that names a new source on every request still
// spends its own budget (docs/security.md#limits).
func TestForwardingHeadersIgnoredByDefault(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.DeviceAuthorizationPerSource = ratelimit.Limit{Rate: 1.0 / 60, Burst: 2}
	})
	d := h.authorize("demo-app", nil) // from 127.0.0.1
	c := h.from("127.0.0.2")
	spoof := func(i int) []string {
		if i%2 == 0 {
			return []string{"X-Forwarded-For", "198.51.100." + string(rune('1'+i))}
		}
		return []string{"Forwarded", "for=198.51.100." + string(rune('1'+i))}
	}
	for i := range 5 {
		if r := c.get("/device?user_code=BBBB-BBB"+string(userCodeAlphabet[i+1]), spoof(i)...); r.Status != 400 {
			t.Fatalf("wrong guess %d: %d", i+1, r.Status)
		}
	}
	wantRetryAfter(t, c.get("/device?user_code="+d.UserCode, "X-Forwarded-For", "203.0.113.77"))

	for i := range 2 {
		if r := c.post("/device_authorization", url.Values{"client_id": {"demo-app"}}, nil, spoof(i)...); r.Status != 200 {
			t.Fatalf("device authorization %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	wantRetryAfter(t, c.post("/device_authorization", url.Values{"client_id": {"demo-app"}}, nil, "X-Forwarded-For", "203.0.113.78"))
}

// Behind a trusted proxy, each forwarded client has its own budgets: one
// that spends its user-code budget does not lock out another one, nor the
// owner of a live code.
func TestTrustedProxySeparateBudgets(t *testing.T) {
	h := newHarness(t, behindProxy(nil))
	d := h.authorize("demo-app", nil, "X-Forwarded-For", "198.51.100.9")
	for i := range 5 {
		if r := h.get("/device?user_code=BBBB-BBB"+string(userCodeAlphabet[i+1]), "X-Forwarded-For", "198.51.100.1"); r.Status != 400 {
			t.Fatalf("wrong guess %d: %d", i+1, r.Status)
		}
	}
	wantRetryAfter(t, h.get("/device?user_code=BBBB-BBBZ", "X-Forwarded-For", "198.51.100.1"))
	// Another client behind the same proxy is not locked out ...
	if r := h.get("/device?user_code=BBBB-BBBZ", "X-Forwarded-For", "198.51.100.2"); r.Status != 400 {
		t.Errorf("another client's wrong guess: %d, want 400", r.Status)
	}
	// ... and the owner gets the consent page and approves, the password
	// check counted against the owner too.
	owner := *h
	owner.client = &http.Client{Transport: headerTransport{"X-Forwarded-For": "2001:db8::1"}}
	cookie, tok, _ := openConsent(t, &owner, d.UserCode)
	r := owner.pagePost(url.Values{"csrf": {tok}, "user_code": {d.UserCode}, "username": {"alice"}, "password": {testPassword}, "action": {"approve"}}, cookie)
	if r.Status != 200 {
		t.Fatalf("owner approve: %d %s", r.Status, r.Raw)
	}
	// The proxy's own address was never the one counted.
	if r := h.get("/device?user_code=BBBB-BBBZ"); r.Status != 400 {
		t.Errorf("the proxy itself: %d, want 400", r.Status)
	}
}

// Behind a trusted proxy the untrusted hop nearest the issuer is the one
// counted: entries a client puts on the left of X-Forwarded-For (or a
// Forwarded chain) are ignored, so changing them dodges nothing.
func TestTrustedProxySpoofedLeftEntries(t *testing.T) {
	h := newHarness(t, behindProxy(func(o *Options) {
		o.DeviceAuthorizationPerSource = ratelimit.Limit{Rate: 1.0 / 60, Burst: 2}
	}))
	d := h.authorize("demo-app", nil, "X-Forwarded-For", "198.51.100.9")
	chains := [][]string{
		{"X-Forwarded-For", "203.0.113.1, 198.51.100.1"},
		{"X-Forwarded-For", "203.0.113.2, 198.51.100.1, 127.0.0.1"}, // the trusted proxy appears twice
		{"X-Forwarded-For", "10.0.0.1", "X-Forwarded-For", "198.51.100.1"},
		{"Forwarded", `for=203.0.113.4, for="198.51.100.1:5000"`},
		{"Forwarded", `for="[2001:db8::5]";proto=https, for=198.51.100.1;by=127.0.0.1`},
	}
	for i, c := range chains {
		if r := h.get("/device?user_code=BBBB-BBB"+string(userCodeAlphabet[i+1]), c...); r.Status != 400 {
			t.Fatalf("wrong guess %d (%s): %d", i+1, c, r.Status)
		}
	}
	wantRetryAfter(t, h.get("/device?user_code="+d.UserCode, "X-Forwarded-For", "203.0.113.99, 198.51.100.1"))

	for i := range 2 {
		if r := h.post("/device_authorization", url.Values{"client_id": {"demo-app"}}, nil, chains[i]...); r.Status != 200 {
			t.Fatalf("device authorization %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	wantRetryAfter(t, h.post("/device_authorization", url.Values{"client_id": {"demo-app"}}, nil, "X-Forwarded-For", "203.0.113.98, 198.51.100.1"))
	if r := h.post("/device_authorization", url.Values{"client_id": {"demo-app"}}, nil, "X-Forwarded-For", "198.51.100.2"); r.Status != 200 {
		t.Errorf("device authorization for another client: %d %s", r.Status, r.Raw)
	}
}

// The token endpoint's unknown-device-code budget (TokenRequest.RemoteIP)
// is per forwarded client too; a peer that is not a trusted proxy is
// counted as itself whatever it forwards.
func TestTrustedProxyTokenEndpoint(t *testing.T) {
	h := newHarness(t, behindProxy(nil))
	k := newKey(t)
	junk := url.Values{"grant_type": {GrantDeviceCode}, "client_id": {"demo-app"}, "device_code": {"guess-" + strings.Repeat("x", 40)}}
	var last result
	for range 21 {
		last = h.post("/token", junk, k, "X-Forwarded-For", "198.51.100.1")
	}
	wantRetryAfter(t, last)
	wantErr(t, h.post("/token", junk, k, "X-Forwarded-For", "198.51.100.2"), 400, CodeInvalidGrant)

	// 127.0.0.2 is not trusted: its X-Forwarded-For is ignored.
	u := h.from("127.0.0.2")
	for range 21 {
		last = u.post("/token", junk, k, "X-Forwarded-For", "198.51.100.3")
	}
	wantRetryAfter(t, last)
	wantRetryAfter(t, u.post("/token", junk, k, "X-Forwarded-For", "198.51.100.4"))
	wantErr(t, h.post("/token", junk, k, "X-Forwarded-For", "198.51.100.3"), 400, CodeInvalidGrant)
}

// headerTransport sets headers on every request (cookies and forms are
// the caller's).
type headerTransport map[string]string

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}
