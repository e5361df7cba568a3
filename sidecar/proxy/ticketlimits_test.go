package proxy

import (
	"net/http"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// ticketAs asks for a WebSocket ticket as sub with its own key.
func (h *harness) ticketAs(sub string, s dpop.Signer) *http.Response {
	tok := h.lease(func(sp *token.Spec) { sp.Subject, sp.JKT = sub, s.PublicJWK().Thumbprint() }, read...)
	r := h.request("POST", DefaultTicketPath)
	r.Header.Set("Authorization", "DPoP "+tok)
	r.Header.Set("DPoP", h.proofWith(s, "POST", publicURL+DefaultTicketPath, dpop.ProofOptions{AccessToken: tok}))
	setBody(r, "application/json", `{"path":"/ws"}`)
	return h.do(r)
}

// TestTicketLimits: one subject cannot fill the ticket store: the tickets
// issued to it within their TTL are capped and the endpoint is
// rate-limited per subject, both 429 with Retry-After for that subject
// only.
func TestTicketLimits(t *testing.T) {
	t.Run("tickets per subject", func(t *testing.T) {
		h := newHarness(t, func(h *harness) {
			h.cfg.WebSocket.TicketsPerSubject = 3
			h.cfg.WebSocket.TicketRate = ratelimit.Limit{Rate: 100, Burst: 100}
		})
		alice := ticketsUntilRefused(t, h, 3)
		h.clock.Advance(h.proxy.Config().WebSocket.TicketTTL + time.Second)
		if res := h.ticketAs("alice", alice); res.StatusCode != 200 {
			t.Errorf("after the tickets expired: %d", res.StatusCode)
		}
	})
	t.Run("ticket endpoint rate", func(t *testing.T) {
		h := newHarness(t, func(h *harness) {
			h.cfg.WebSocket.TicketRate = ratelimit.Limit{Rate: 0.001, Burst: 2}
		})
		ticketsUntilRefused(t, h, 2)
	})
}

// ticketsUntilRefused takes n tickets as alice, then checks the next is
// 429 with Retry-After while bob still gets one; it returns alice's key.
func ticketsUntilRefused(t *testing.T, h *harness, n int) dpop.Signer {
	t.Helper()
	_, alice := newECKey()
	for i := 0; i < n; i++ {
		if res := h.ticketAs("alice", alice); res.StatusCode != 200 {
			t.Fatalf("ticket %d: %d", i, res.StatusCode)
		}
	}
	res := h.ticketAs("alice", alice)
	checkRefusal(t, res, 429, noCheck)
	if res.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	_, bob := newECKey()
	if res := h.ticketAs("bob", bob); res.StatusCode != 200 {
		t.Errorf("another subject: %d", res.StatusCode)
	}
	return alice
}
