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

	"github.com/keyless-dev/keyless/sidecar/token/atjwt"
)

// Claims are the verified claims of an access token that the rest of keyless
// uses; they live in the pure [atjwt] package so the edge build shares them.
type Claims = atjwt.Claims

// Verifier verifies an access token's signature, typ, iss, aud, exp and nbf
// and returns its claims. Implementations must fail closed: any error means
// the token is not accepted.
type Verifier interface {
	Verify(ctx context.Context, raw string) (*Claims, error)
}
