package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/token"
)

// TestRotationPrepublishes: after keyless keys rotate, a verifier that
// caches the issuer's JWKS (the proxy's token.RemoteJWKS, which refetches
// on an unknown kid at most once per refresh interval) accepts the first
// token signed by the new key, whether it fetched the set a second before
// the rotation or a second before that token.
func TestRotationPrepublishes(t *testing.T) {
	for _, tc := range []struct {
		name string
		// fetchBefore is how long before the first new-key token the
		// verifier last fetched the set.
		fetchBefore time.Duration
		fetches     int
	}{
		{"fetched a second before the first new-key token", time.Second, 2},
		{"fetched a second before the rotation", token.PrePublish + time.Second, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			ctx := context.Background()
			remote := &token.RemoteJWKS{URL: h.srv.URL + "/jwks.json", Now: h.clk.Now}
			verify := func(raw string) error {
				v := &token.JWTVerifier{Keys: remote, Issuer: h.s.Issuer(), Audience: h.s.audience, Now: h.clk.Now}
				_, err := v.Verify(ctx, raw)
				return err
			}
			mint := func() (string, string) {
				raw, _, err := h.s.Minter().Issue(ctx, token.Spec{Subject: "alice", Audience: []string{h.s.audience}, ClientID: "demo-app", JKT: "j", TTL: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				return raw, kidOf(t, raw)
			}
			oldTok, oldKID := mint()
			rotateAt := h.clk.Now()
			firstNew := rotateAt.Add(token.PrePublish)
			fetchAt := firstNew.Add(-tc.fetchBefore)
			if fetchAt.Before(rotateAt) {
				h.clk.Add(fetchAt.Sub(rotateAt))
				if err := verify(oldTok); err != nil { // the fetch
					t.Fatal(err)
				}
				h.clk.Add(rotateAt.Sub(h.clk.Now()))
			}
			newKID, err := h.s.RotateKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Right after the rotation the old key still signs.
			if tok, kid := mint(); kid != oldKID || verify(tok) != nil {
				t.Fatalf("right after rotation: signed by %s (old %s)", kid, oldKID)
			}
			if !fetchAt.Before(rotateAt) {
				h.clk.Add(fetchAt.Sub(h.clk.Now()))
				if err := verify(oldTok); err != nil { // the fetch
					t.Fatal(err)
				}
			}
			h.clk.Add(firstNew.Sub(h.clk.Now()))
			tok, kid := mint()
			if kid != newKID {
				t.Fatalf("after the pre-publication period: signed by %s, want the new key %s", kid, newKID)
			}
			if err := verify(tok); err != nil {
				t.Fatalf("the first token signed by the new key is refused: %v", err)
			}
			if err := verify(oldTok); err != nil {
				t.Errorf("a token of the old key is refused: %v", err)
			}
			if got := remote.Fetches(); got > tc.fetches {
				t.Errorf("JWKS fetches = %d, want at most %d", got, tc.fetches)
			}
		})
	}
}

func kidOf(t *testing.T, raw string) string {
	t.Helper()
	hdr, _, _ := strings.Cut(raw, ".")
	b, _ := base64.RawURLEncoding.DecodeString(hdr)
	var h struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.KID
}
