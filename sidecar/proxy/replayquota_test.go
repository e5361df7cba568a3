package proxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// keyClient is a second lease holder with its own key.
func (h *harness) keyClient(sub string) func(path string) *http.Request {
	_, s := newECKey()
	return func(path string) *http.Request {
		tok := h.lease(func(sp *token.Spec) { sp.Subject, sp.JKT = sub, s.PublicJWK().Thumbprint() }, read...)
		r := h.request("GET", path)
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", h.proofWith(s, "GET", publicURL+path, dpop.ProofOptions{AccessToken: tok}))
		return r
	}
}

// TestReplayQuotaPerKey: one key's live replay entries are bounded; past
// its quota that key alone gets 429 with Retry-After, before its proof's
// signature is even checked, while every other key goes on; the quota
// frees as its entries expire.
func TestReplayQuotaPerKey(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.cfg.DPoP.ReplayPerKey = 5 })
	for i := 0; i < 5; i++ {
		if res := h.do(h.authed("GET", "/v1/orders", read...)); res.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, res.StatusCode)
		}
	}
	before := h.echo.hits.Load()
	res := h.do(h.authed("GET", "/v1/orders", read...))
	checkRefusal(t, res, 429, noCheck)
	if ra, _ := strconv.Atoi(res.Header.Get("Retry-After")); ra < 1 || h.echo.hits.Load() != before {
		t.Errorf("past the quota: Retry-After %q, forwarded %v", res.Header.Get("Retry-After"), h.echo.hits.Load() != before)
	}
	// Checked before the signature: a forged proof from that key is 429 too.
	r := h.authed("GET", "/v1/orders", read...)
	proof := r.Header.Get("DPoP")
	r.Header.Set("DPoP", proof[:strings.LastIndexByte(proof, '.')+1]+"AAAA")
	checkRefusal(t, h.do(r), 429, noCheck)
	// Another key is not refused.
	bob := h.keyClient("bob")
	if res := h.do(bob("/v1/orders")); res.StatusCode != 200 {
		t.Errorf("another key after the first filled its quota: %d", res.StatusCode)
	}
	// Entries expire after MaxAge + FutureSkew; then the key is served again.
	h.clock.Advance(h.proxy.Config().DPoP.MaxAge + h.proxy.Config().DPoP.FutureSkew + time.Second)
	if res := h.do(h.authed("GET", "/v1/orders", read...)); res.StatusCode != 200 {
		t.Errorf("after the entries expired: %d", res.StatusCode)
	}
}

// TestKeyQuotaMax: the default quota is a key's legitimate maximum under
// the routes' per-subject rate limits.
func TestKeyQuotaMax(t *testing.T) {
	win := 65 * time.Second
	limited := func(rate float64, burst int) *RateLimit {
		return &RateLimit{PerSubject: ratelimit.Limit{Rate: rate, Burst: burst}}
	}
	for _, tt := range []struct {
		name   string
		routes []Route
		set    int
		want   int
	}{
		// DefaultKeyRate is added for the ticket endpoint.
		{"one limited route", []Route{{RateLimit: limited(1, 5)}}, 0, 65 + 5 + DefaultKeyRate},
		{"two limited routes add up", []Route{{RateLimit: limited(1, 5)}, {RateLimit: limited(0.5, 0)}}, 0, 98 + 6 + DefaultKeyRate},
		{"an unlimited route counts DefaultKeyRate", []Route{{}}, 0, DefaultKeyRate*65 + 2*DefaultKeyRate},
		{"anonymous routes do not count", []Route{{Anonymous: true}, {RateLimit: limited(2, 2)}}, 0, 130 + 2 + DefaultKeyRate},
		{"configured", []Route{{}}, 7, 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Routes: tt.routes}
			cfg.DPoP.MaxAge, cfg.DPoP.FutureSkew, cfg.DPoP.ReplayPerKey = 60*time.Second, win-60*time.Second, tt.set
			if got := keyQuotaMax(cfg); got != tt.want {
				t.Errorf("keyQuotaMax = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestReplayQuotaRedisUnderPressure: with the shared Redis nearly full
// (maxmemory a little above what it holds, noeviction), one key flooding
// proofs stops at its quota instead of filling Redis, so another key is
// still served (before, everyone got 503 once one client filled it).
// Bounded: a fixed number of requests.
func TestReplayQuotaRedisUnderPressure(t *testing.T) {
	srv := redistest.Start(t)
	var st *redisstore.Store
	h := newHarness(t, func(h *harness) {
		st = seededRedis(t, srv.URL(), h.clock.Now)
		h.opts.Replay, h.opts.Revocations = st, st
		h.cfg.DPoP.ReplayPerKey = 100
	})
	ctx := context.Background()
	c := st.Client()
	if err := c.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	used := 0
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
			used, _ = strconv.Atoi(v)
		}
	}
	// Room for a few hundred entries: the quota's 100 fit, the flood's
	// 1500 would not.
	if err := c.ConfigSet(ctx, "maxmemory", strconv.Itoa(used+150<<10)).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.ConfigSet(context.Background(), "maxmemory", "0") })
	mallory := h.keyClient("mallory")
	limited := 0
	for i := 0; i < 1500; i++ {
		switch res := h.do(mallory("/v1/orders")); res.StatusCode {
		case 200:
		case 429:
			limited++
		default:
			b, _ := readAll(res)
			t.Fatalf("flood request %d: %d %s\n%s", i, res.StatusCode, b, h.logs.String())
		}
	}
	if limited == 0 {
		t.Error("the flooding key was never limited")
	}
	if res := h.do(h.authed("GET", "/v1/orders", read...)); res.StatusCode != 200 {
		b, _ := readAll(res)
		t.Errorf("another key after the flood: %d %s", res.StatusCode, b)
	}
}
