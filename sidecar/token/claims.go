// Package token mints and verifies the JWT access tokens of RFC 9068
// ("typ": "at+jwt") that keyless issues: device-flow access tokens from the
// embedded authorization server and capability leases from the vending
// service. Both are DPoP-bound through cnf.jkt (RFC 9449 section 6.1).
//
// jwx enters the project here (and in server-side key handling), never in
// the dpop package, so it stays out of the browser and edge builds.
package token

import (
	"context"
	"time"
)

// Claims are the verified claims of an access token that the rest of keyless
// uses. Scope is the space-separated scope claim split into its tokens.
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
	ClientID string
	JTI      string
	// LeaseID is set only on leases minted by the vending service
	// (claim "lease_id"); the proxy accepts nothing else (SECURITY.md
	// decision 14).
	LeaseID string
	Scope   []string
	// JKT is cnf.jkt: the RFC 7638 thumbprint of the DPoP key the token is
	// bound to. Empty for an unbound token, which the proxy refuses.
	JKT string
	// Preview marks a preview-mode lease (claim "preview": true).
	Preview   bool
	IssuedAt  time.Time
	NotBefore time.Time
	Expiry    time.Time
}

// HasScope reports whether s is one of the token's scopes, by exact,
// case-sensitive match (RFC 6749 section 3.3).
func (c *Claims) HasScope(s string) bool {
	for _, v := range c.Scope {
		if v == s {
			return true
		}
	}
	return false
}

// Verifier verifies an access token's signature, typ, iss, aud, exp and nbf
// and returns its claims. Implementations must fail closed: any error means
// the token is not accepted.
type Verifier interface {
	Verify(ctx context.Context, raw string) (*Claims, error)
}
