package authserver

import (
	"net/http"
	"net/url"
	"testing"
)

// TestProofQuotaPerKey: the token endpoint needs no credentials, so its
// replay cache bounds the live entries of each proof key: past
// Options.ReplayPerKey that key alone gets 429 with Retry-After, and
// another key is still served.
func TestProofQuotaPerKey(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ReplayPerKey = 3 })
	form := url.Values{"grant_type": {GrantRefreshToken}, "client_id": {"demo-app"}, "refresh_token": {"nope"}}
	k := newKey(t)
	for i := 0; i < 3; i++ {
		if r := h.post("/token", form, k); r.Status == http.StatusTooManyRequests {
			t.Fatalf("proof %d: 429 within the quota", i)
		}
	}
	r := h.post("/token", form, k)
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Errorf("past the quota: %d %s, Retry-After %q", r.Status, r.Raw, r.Header.Get("Retry-After"))
	}
	if r := h.post("/token", form, newKey(t)); r.Status == http.StatusTooManyRequests {
		t.Errorf("another key: %d", r.Status)
	}
}
