package token_test

import (
	"context"
	"fmt"
	"time"

	"github.com/keyless-dev/keyless/sidecar/token"
)

// Mint a DPoP-bound lease and verify it, as the proxy's tests do.
func ExampleMinter() {
	ctx := context.Background()
	keys, err := token.NewKeySet(time.Now())
	if err != nil {
		panic(err)
	}
	m := &token.Minter{Keys: keys, Issuer: "https://auth.example.test"}
	raw, _, err := m.Issue(ctx, token.Spec{
		Subject:  "alice",
		Audience: []string{"https://api.example.test"},
		ClientID: "demo-app",
		Scope:    []string{"orders:read"},
		JKT:      "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		LeaseID:  "lease-1",
		TTL:      5 * time.Minute,
	})
	if err != nil {
		panic(err)
	}
	// Elsewhere, with the issuer's JWKS: &token.RemoteJWKS{URL: ".../jwks.json"}.
	v := &token.JWTVerifier{Keys: keys, Issuer: "https://auth.example.test", Audience: "https://api.example.test"}
	c, err := v.Verify(ctx, raw)
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Subject, c.LeaseID, c.HasScope("orders:read"), c.JKT)
	// Output: alice lease-1 true 0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I
}
