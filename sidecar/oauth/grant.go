package oauth

import (
	"context"
	"net/url"
	"time"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/dpop"
)

// Grant types keyless's token endpoint serves.
//
// https://www.rfc-editor.org/rfc/rfc8628#section-3.4
// https://www.rfc-editor.org/rfc/rfc6749#section-6
// https://www.rfc-editor.org/rfc/rfc8693#section-2.1
const (
	GrantDeviceCode    = "urn:ietf:params:oauth:grant-type:device_code"
	GrantRefreshToken  = "refresh_token"
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// TokenRequest is a parsed token-endpoint request, as the endpoint hands
// it to a [GrantHandler].
type TokenRequest struct {
	// Form holds the body parameters, each present at most once.
	Form url.Values
	// Client is the identified client; never nil.
	Client *config.Client
	// Authenticated is true when the client proved a secret.
	Authenticated bool
	// Proof is the verified DPoP proof; nil when the request had none.
	Proof *dpop.Proof
	// Now is the request time.
	Now time.Time
	// RemoteIP is the client's IP address, for per-source rate limits: the
	// peer's, or, when the peer is one of issuer.trusted_proxies, the
	// client address that proxy forwarded (never a header otherwise).
	RemoteIP string
}

// TokenResponse is a successful token response.
//
// https://www.rfc-editor.org/rfc/rfc6749#section-5.1
// https://www.rfc-editor.org/rfc/rfc8693#section-2.2.1
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	RefreshToken    string `json:"refresh_token,omitempty"`
	Scope           string `json:"scope,omitempty"`
}

// GrantHandler serves one grant_type at the token endpoint. The endpoint
// has already read the form, identified (and, for confidential clients,
// authenticated) the client, and verified the DPoP proof if one was sent.
// Return an [*Error] to refuse; any other error is answered 500.
type GrantHandler interface {
	ServeGrant(ctx context.Context, req *TokenRequest) (*TokenResponse, error)
}

// GrantFunc adapts a function to [GrantHandler].
type GrantFunc func(ctx context.Context, req *TokenRequest) (*TokenResponse, error)

// ServeGrant implements GrantHandler.
func (f GrantFunc) ServeGrant(ctx context.Context, req *TokenRequest) (*TokenResponse, error) {
	return f(ctx, req)
}

// GrantRegistry is a token endpoint that more grant types can be plugged
// into: the seam through which the vending service adds RFC 8693 token
// exchange and lease renewal without knowing the server behind it.
type GrantRegistry interface {
	// Grant returns the handler of a grant_type, or nil: a service that
	// takes over a grant the endpoint already has wraps it.
	Grant(grantType string) GrantHandler
	// RegisterGrant adds (or replaces) the handler of a grant_type.
	RegisterGrant(grantType string, h GrantHandler)
}
