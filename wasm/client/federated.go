package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/dpop/proof"
)

// ErrIdPCORS: the external identity provider could not be reached from
// the page. In a browser this is almost always its endpoints refusing
// cross-origin requests (no CORS headers for this origin); fetch cannot
// tell that from a network failure. The way around it is keyless's own
// /device page signing in at the IdP (login.oidc,
// docs/identity-providers.md).
var ErrIdPCORS = errors.New("keyless: the identity provider cannot be reached from this page (its endpoints may not allow cross-origin requests); sign in through keyless's /device page instead (login.oidc)")

// Federated signs in at an external identity provider's device flow and
// trades its token for a lease at keyless's vending service:
//
//  1. IdP: the device flow, with DPoP when the IdP's metadata lists
//     dpop_signing_alg_values_supported (the token is then bound to the
//     page's key), bearer otherwise.
//  2. Vending: RFC 8693 token exchange of the IdP's token, with a proof of
//     the page's key, for a lease; renewal then runs at vending as for
//     keyless's own sign-in.
//
// The IdP's token is held only between the two steps: [Federated.Lease]
// returns the lease alone.
type Federated struct {
	// IdP is the device flow at the identity provider.
	IdP *Flow
	// Vending is keyless (its token endpoint, renewal and revocation).
	Vending *Flow
}

// NewFederated discovers both servers. A failure to reach the IdP at all
// is [ErrIdPCORS].
func NewFederated(ctx context.Context, t Transport, signer proof.Signer, idpIssuer, vendingIssuer, clientID string) (*Federated, error) {
	fetcher := &Fetcher{Signer: signer, Transport: t}
	idp, err := Discover(ctx, t, idpIssuer)
	if err != nil {
		return nil, idpErr(err)
	}
	ven, err := Discover(ctx, t, vendingIssuer)
	if err != nil {
		return nil, fmt.Errorf("keyless: vending: %w", err)
	}
	return &Federated{
		IdP:     &Flow{Fetcher: fetcher, Meta: idp, ClientID: clientID, Bearer: len(idp.DPoPSigningAlgs) == 0},
		Vending: &Flow{Fetcher: fetcher, Meta: ven, ClientID: clientID},
	}, nil
}

// Start starts the device flow at the IdP.
func (f *Federated) Start(ctx context.Context, scope []string) (*DeviceAuthorization, error) {
	da, err := f.IdP.Start(ctx, scope)
	return da, idpErr(err)
}

// Poll waits for the user's approval at the IdP.
func (f *Federated) Poll(ctx context.Context, da *DeviceAuthorization, onState func(State)) (*TokenResponse, error) {
	tok, err := f.IdP.Poll(ctx, da, onState)
	return tok, idpErr(err)
}

// Lease exchanges the IdP's token for a lease of scope at vending: its
// access token when it is a JWT (RFC 9068 or another signed JWT), else its
// ID token.
func (f *Federated) Lease(ctx context.Context, tok *TokenResponse, scope []string) (*TokenResponse, error) {
	subject, typ := tok.AccessToken, tokenTypeAccess
	if strings.Count(subject, ".") != 2 && tok.IDToken != "" {
		subject, typ = tok.IDToken, tokenTypeID
	}
	return f.Vending.ExchangeAs(ctx, subject, typ, scope)
}

// idpErr turns "no response at all" from the IdP into ErrIdPCORS.
func idpErr(err error) error {
	if err != nil && errors.Is(err, ErrNetwork) {
		return fmt.Errorf("%w (%v)", ErrIdPCORS, err)
	}
	return err
}
