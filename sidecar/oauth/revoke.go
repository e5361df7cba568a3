package oauth

import (
	"context"
	"time"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/dpop"
)

// RevokeRequest is a parsed RFC 7009 revocation request, handed to the
// [Revoker]s a revocation endpoint asks.
//
// https://www.rfc-editor.org/rfc/rfc7009#section-2.1
type RevokeRequest struct {
	// Token is the token to revoke; never empty.
	Token string
	// Hint is token_type_hint; it only orders a search (RFC 7009 section
	// 2.1), so handlers may ignore it.
	Hint string
	// Client is the identified client.
	Client *config.Client
	// Proof is the verified DPoP proof sent to the revocation endpoint;
	// nil when the request had none. A DPoP-bound token is revoked only
	// with a proof of its key (docs/revocation.md), so a copy of the token
	// alone cannot sign its owner out.
	Proof *dpop.Proof
	// Now is the request time.
	Now time.Time
}

// Revoker revokes the tokens of a service that shares an issuer's
// revocation endpoint: the vending service's leases and renewal tokens,
// as the token endpoint routes their renewal to it.
//
// RevokeToken returns handled false when the token is not one of its
// own, and the endpoint goes on with its own tokens. Handled with a nil
// error answers 200, also for an unknown or expired token of its kind (no
// oracle, RFC 7009 section 2.2); an [*Error] refuses.
type Revoker interface {
	RevokeToken(ctx context.Context, req *RevokeRequest) (handled bool, err error)
}

// RevokerRegistry is a revocation endpoint that more [Revoker]s can be
// plugged into; they are asked in the order they were added, before the
// endpoint's own tokens.
type RevokerRegistry interface {
	RegisterRevoker(r Revoker)
}

// RequireProofOfKey refuses the revocation of a token bound to jkt unless
// the request proved possession of that key: 400 invalid_dpop_proof, and
// the token stays valid.
//
// https://www.rfc-editor.org/rfc/rfc9449#section-5
func RequireProofOfKey(jkt string, proof *dpop.Proof) error {
	if jkt == "" {
		return nil
	}
	if proof == nil {
		return NewError(CodeInvalidDPoPProof, "revoking a DPoP-bound token needs a DPoP proof of its key")
	}
	if proof.JKT != jkt {
		return NewError(CodeInvalidDPoPProof, "the DPoP proof is not by the key the token is bound to")
	}
	return nil
}
