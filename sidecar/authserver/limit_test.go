package authserver

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// from returns a copy of the harness whose requests leave from the
// loopback address ip (127.0.0.0/8 is all loopback on Linux), so one
// test can be several sources.
func (h *harness) from(ip string) *harness {
	h.t.Helper()
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext}
	h.t.Cleanup(tr.CloseIdleConnections)
	return &harness{t: h.t, srv: h.srv, s: h.s, clk: h.clk, dir: h.dir, db: h.db, audit: h.audit, opts: h.opts,
		client: &http.Client{Transport: tr}}
}

func wantRetryAfter(t *testing.T, r result) {
	t.Helper()
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("status = %d, want 429: %s", r.status, r.raw)
	}
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After = %q, want whole seconds >= 1", r.header.Get("Retry-After"))
	}
}

// Wrong user codes count against their source: the guesser's source is
// refused (429, Retry-After) before any lookup, so it learns nothing more;
// the owner of a live code, at another source, is never refused (RFC 8628
// section 5.1).
func TestUserCodeFailuresCountAgainstTheirSource(t *testing.T) {
	h := newHarness(t, nil)
	d := h.authorize("demo-app", nil)
	guesser, owner := h.from("127.0.0.2"), h.from("127.0.0.3")
	for i := range 5 {
		if r := guesser.get("/device?user_code=BBBB-BBB" + string(userCodeAlphabet[i+1])); r.status != 400 {
			t.Fatalf("wrong guess %d: %d", i+1, r.status)
		}
	}
	wantRetryAfter(t, guesser.get("/device?user_code=BBBB-BBBZ"))
	// The right code from the locked source is refused as well: no oracle.
	wantRetryAfter(t, guesser.get("/device?user_code="+d.UserCode))
	// The owner, elsewhere, gets the consent page and can approve.
	cookie, tok, _ := openConsent(t, owner, d.UserCode)
	r := owner.pagePost(url.Values{"csrf": {tok}, "user_code": {d.UserCode}, "username": {"alice"}, "password": {testPassword}, "action": {"approve"}}, cookie)
	if r.status != 200 {
		t.Fatalf("owner approve: %d %s", r.status, r.raw)
	}
	// The window passes: the guesser's source may try again.
	h.clk.add(10 * time.Minute)
	if r := guesser.get("/device?user_code=BBBB-BBBC"); r.status != 400 {
		t.Errorf("after the window: %d", r.status)
	}
}

// Many sources spending their budgets never lock out an owner: there is no
// global lockout.
func TestUserCodeManySourcesNoGlobalLockout(t *testing.T) {
	h := newHarness(t, nil)
	d := h.authorize("demo-app", nil)
	for i := range 4 {
		g := h.from("127.0.1." + strconv.Itoa(i+1))
		for range 6 {
			g.get("/device?user_code=BBBB-BBBB")
		}
	}
	if r := h.from("127.0.2.1").get("/device?user_code=" + d.UserCode); r.status != 200 {
		t.Errorf("owner after 24 wrong guesses from 4 sources: %d", r.status)
	}
}

// Polls of known device codes are never refused by the unknown-code limit:
// only unknown codes count, against their source.
func TestPollsOfKnownCodesNeverLimited(t *testing.T) {
	h := newHarness(t, nil)
	k := newKey(t)
	d := h.authorize("demo-app", k)
	src := h.from("127.0.0.2")
	var last result
	for range 21 {
		last = src.poll("demo-app", "guess-"+strings.Repeat("x", 40), k)
	}
	wantRetryAfter(t, last)
	if err := h.s.Approve(context.Background(), d.UserCode, "alice", "test"); err != nil {
		t.Fatal(err)
	}
	if r := src.poll("demo-app", d.DeviceCode, k); r.status != 200 {
		t.Fatalf("poll of an approved code from a limited source: %d %s", r.status, r.raw)
	}
	// Another source is not limited by the first one's failures.
	wantErr(t, h.from("127.0.0.3").poll("demo-app", "guess-"+strings.Repeat("y", 40), k), 400, CodeInvalidGrant)
}

// A source is an IPv4 address or an IPv6 /64: one host owns a whole /64,
// so 50 addresses of one /64 share one budget.
func TestSourceKey(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"not an ip", "not an ip"},
	}
	for _, tt := range tests {
		if got := sourceKey(tt.ip); got != tt.want {
			t.Errorf("sourceKey(%q) = %q, want %q", tt.ip, got, tt.want)
		}
	}
	l := newFailureLimiter(5, 10*time.Minute, 1<<16)
	now := time.Unix(0, 0)
	refused := 0
	for i := range 50 {
		src := sourceKey("2001:db8:1:2::" + strconv.FormatInt(int64(i+1), 16))
		if ok, _ := l.allow(src, now); !ok {
			refused++
			continue
		}
		l.fail(src, now)
	}
	if refused != 45 {
		t.Errorf("50 addresses of one /64: %d refused, want 45", refused)
	}
	if ok, _ := l.allow(sourceKey("2001:db8:1:3::1"), now); !ok {
		t.Error("another /64 is refused")
	}
}

// The limiter tracks a bounded number of sources; past the bound it
// refuses sources it cannot track (fails closed) rather than forget one.
func TestFailureLimiterBounded(t *testing.T) {
	l := newFailureLimiter(5, time.Minute, 3)
	now := time.Unix(0, 0)
	for _, k := range []string{"a", "b", "c"} {
		l.fail(k, now)
	}
	if ok, _ := l.allow("d", now); ok {
		t.Error("a fourth source is allowed past the bound")
	}
	l.fail("d", now)
	if len(l.counts) != 3 {
		t.Errorf("tracked %d sources, want 3", len(l.counts))
	}
	if ok, _ := l.allow("a", now); !ok {
		t.Error("a tracked source under budget is refused")
	}
	if ok, _ := l.allow("d", now.Add(time.Minute)); !ok {
		t.Error("the next window still refuses")
	}
}
