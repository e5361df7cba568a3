package dpop

import "github.com/keyless-dev/keyless/sidecar/dpop/proof"

// The proof-creation half lives in package proof so that the browser build
// links no asymmetric crypto; these names keep one API for everyone else.
type (
	// JWK is a public JSON Web Key; see [proof.JWK].
	JWK = proof.JWK
	// Signer signs proofs; see [proof.Signer].
	Signer = proof.Signer
	// ProofOptions are the optional inputs of [NewProof].
	ProofOptions = proof.Options
)

// NewProof creates a DPoP proof JWT for one request; see [proof.New].
func NewProof(s Signer, method, htu string, opts ProofOptions) (string, error) {
	return proof.New(s, method, htu, opts)
}

// AccessTokenHash is base64url(SHA-256(token)), the ath claim.
func AccessTokenHash(token string) string { return proof.AccessTokenHash(token) }

// NormalizeHTU returns the comparable form of an htu; see
// [proof.NormalizeHTU].
func NormalizeHTU(s string) (string, error) { return proof.NormalizeHTU(s) }
