package oidclogin

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/federation"
)

// validator builds the federation validator of the provider's ID tokens:
// the same checks and claim mapping the vending service applies to
// external tokens, with keyless's client_id as the audience and ID tokens
// as the only token type.
func validator(cfg config.OIDCLogin, o Options) (*federation.Validator, error) {
	gm := map[string]federation.StringList{}
	for k, v := range cfg.GroupMap {
		gm[k] = federation.StringList{v}
	}
	return federation.New(federation.Config{
		Name: cfg.Name, Issuer: cfg.Issuer, Audience: federation.StringList{cfg.ClientID},
		TokenTypes: []federation.TokenType{federation.IDToken}, SubjectClaim: cfg.SubjectClaim,
		GroupsClaim: cfg.GroupsClaim, GroupMap: gm,
	}, federation.Options{Client: o.Client, Now: o.Now, MinRefresh: o.RefreshInterval})
}

// Validate checks an ID token as OpenID Connect Core section 3.1.3.7
// requires of a confidential client using the code flow (through
// [federation.Validator]: signature by a key of the provider's JWKS with
// an allowed asymmetric alg, exact iss, aud containing client_id, azp,
// exp/iat/nbf with leeway) and that its nonce is the one sent in the
// authorization request; then it maps the claims to an [Identity].
//
// https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation
func (p *Provider) Validate(ctx context.Context, raw, nonce string) (*Identity, error) {
	if p.fedErr != nil {
		return nil, fmt.Errorf("%w: %v", ErrIDToken, p.fedErr)
	}
	if nonce == "" {
		// federation checks the nonce only when one is expected; the
		// code flow always sends one.
		return nil, fmt.Errorf("%w: no nonce to check", ErrIDToken)
	}
	id, err := p.fed.Validate(ctx, raw, federation.Expect{Type: federation.IDToken, ClientID: p.cfg.ClientID, Nonce: nonce})
	if err != nil {
		if errors.Is(err, federation.ErrUnavailable) {
			return nil, fmt.Errorf("%w: %v", ErrProvider, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrIDToken, err)
	}
	return &Identity{Provider: p.cfg.Name, Subject: p.cfg.Name + ":" + id.Subject, Groups: id.Groups}, nil
}

// Check is `keyless doctor`'s test of the provider: discovery (issuer
// matches, endpoints usable, PKCE S256 when methods are listed), then the
// validator's check (JWKS reachable, a key of an allowed algorithm, clock
// skew within the leeway).
func (p *Provider) Check(ctx context.Context) error {
	m, err := p.Discover(ctx)
	if err != nil {
		return err
	}
	if len(m.CodeChallengeMethods) > 0 && !containsS256(m.CodeChallengeMethods) {
		return fmt.Errorf("%w: the provider does not list PKCE S256 in code_challenge_methods_supported", ErrProvider)
	}
	if p.fedErr != nil {
		return p.fedErr
	}
	if err := p.fed.Check(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrProvider, err)
	}
	return nil
}

func containsS256(ms []string) bool {
	for _, m := range ms {
		if m == "S256" {
			return true
		}
	}
	return false
}
