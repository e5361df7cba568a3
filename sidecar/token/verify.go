package token

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/keyless-dev/keyless/sidecar/token/atjwt"
)

// Defaults for [JWTVerifier].
const (
	// DefaultLeeway is the exp/nbf leeway (docs/security.md#d9).
	DefaultLeeway = atjwt.DefaultLeeway
	// MaxLeeway caps Leeway (docs/security.md#windows).
	MaxLeeway = atjwt.MaxLeeway
	// DefaultMaxSize bounds a token before anything is decoded.
	DefaultMaxSize = atjwt.DefaultMaxSize
)

// ErrInvalidToken wraps every rejection by [JWTVerifier.Verify]: the token
// is malformed, badly signed, expired, or not meant for this audience.
// Callers answer 401 invalid_token. An error that does not wrap it means the
// key source could not answer (answer 503); the token is not accepted either
// way.
var ErrInvalidToken = atjwt.ErrInvalid

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, a...)...)
}

// JWTVerifier verifies RFC 9068 access tokens signed ES256 by a key from
// Keys: typ at+jwt, kid known, signature, iss, aud, exp, nbf, iat, and the
// shape of every claim it returns. It does not check revocation, nor that
// the token is DPoP-bound (Claims.JKT is empty for an unbound token): both
// are the caller's policy.
type JWTVerifier struct {
	// Keys resolves kids; required. Use a [*KeySet] inside the issuer and
	// a [*RemoteJWKS] elsewhere.
	Keys KeySource
	// Issuer must equal iss exactly; required.
	Issuer string
	// Audience must be one of aud's values; required.
	Audience string
	// Leeway tolerates clock skew on exp and nbf; zero means
	// DefaultLeeway, more than MaxLeeway means MaxLeeway.
	Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxSize bounds the raw token; zero means DefaultMaxSize.
	MaxSize int
}

var _ Verifier = (*JWTVerifier)(nil)

// Verify implements [Verifier].
//
// https://www.rfc-editor.org/rfc/rfc9068#section-4
func (v *JWTVerifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if v.Keys == nil || v.Issuer == "" || v.Audience == "" {
		return nil, errors.New("token: verifier needs Keys, Issuer and Audience")
	}
	// Header rules and claim rules are atjwt's, shared with the edge build;
	// the key source and the signature check are this package's.
	p, err := atjwt.Parse(raw, v.MaxSize)
	if err != nil {
		return nil, err
	}
	pub, err := v.Keys.VerificationKey(ctx, p.KID)
	if errors.Is(err, ErrUnknownKey) {
		return nil, invalid("unknown kid")
	}
	if err != nil {
		return nil, fmt.Errorf("token: key source: %w", err)
	}
	sig, err := p.DecodeSignature()
	if err != nil {
		return nil, err
	}
	ver, err := jws.NewVerifier(jwa.ES256)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	if err := ver.Verify([]byte(p.SigningInput), sig, pub); err != nil {
		return nil, invalid("signature does not verify")
	}
	return p.Claims(atjwt.Options{Issuer: v.Issuer, Audience: v.Audience, Leeway: v.Leeway, Now: v.Now})
}
