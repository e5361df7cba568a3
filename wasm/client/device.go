package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Grant types.
const (
	grantDeviceCode    = "urn:ietf:params:oauth:grant-type:device_code"
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
	tokenTypeID        = "urn:ietf:params:oauth:token-type:id_token"
)

// Terminal outcomes of a device flow.
var (
	ErrDenied  = errors.New("keyless: the user denied the request")
	ErrExpired = errors.New("keyless: the code expired before it was approved")
	// ErrNotDPoP: the server issued a token that is not DPoP-bound; RFC 9449
	// section 5 says the client MUST discard it.
	ErrNotDPoP = errors.New("keyless: token response is not DPoP-bound")
	// ErrNotBearer: a server that does not do DPoP answered with a token
	// type other than Bearer.
	ErrNotBearer = errors.New("keyless: token response is not a Bearer token")
)

// Metadata is the part of RFC 8414 authorization server metadata (or an
// OpenID Provider's discovery document) we use.
type Metadata struct {
	Issuer                      string `json:"issuer"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	TokenEndpoint               string `json:"token_endpoint"`
	RevocationEndpoint          string `json:"revocation_endpoint"`
	// DPoPSigningAlgs is dpop_signing_alg_values_supported (RFC 9449
	// section 5.1): empty means the server does not do DPoP.
	DPoPSigningAlgs []string `json:"dpop_signing_alg_values_supported"`
}

// MetadataURLs are where an issuer's metadata is looked for, in order:
// OpenID Connect Discovery (the issuer + /.well-known/openid-configuration),
// then RFC 8414 with its path insertion (the well-known path between the
// host and the issuer's path).
//
// https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfigurationRequest
// https://www.rfc-editor.org/rfc/rfc8414#section-3.1
func MetadataURLs(issuer string) ([]string, error) {
	base, path, err := splitIssuer(issuer)
	if err != nil {
		return nil, err
	}
	return []string{
		strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration",
		base + "/.well-known/oauth-authorization-server" + strings.TrimSuffix(path, "/"),
	}, nil
}

// Discover fetches the issuer's metadata from the first of [MetadataURLs]
// that answers 200, and checks that it names the issuer it was fetched for
// (RFC 8414 section 3.3, OpenID Connect Discovery section 4.3). When no
// URL could be reached at all the error wraps [ErrNetwork].
func Discover(ctx context.Context, t Transport, issuer string) (*Metadata, error) {
	urls, err := MetadataURLs(issuer)
	if err != nil {
		return nil, err
	}
	issuer = strings.TrimSuffix(issuer, "/")
	var errs []error
	for _, u := range urls {
		resp, err := t.Do(ctx, &Request{Method: "GET", URL: u, Header: map[string]string{"Accept": "application/json"}})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			errs = append(errs, err)
			continue
		}
		if resp.Status != 200 {
			errs = append(errs, fmt.Errorf("keyless: discovery: %s: HTTP %d", u, resp.Status))
			continue
		}
		m, err := decodeMetadata(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("keyless: discovery: %w", err)
		}
		if strings.TrimSuffix(m.Issuer, "/") != issuer {
			return nil, errors.New("keyless: discovery: issuer mismatch")
		}
		if origin(m.DeviceAuthorizationEndpoint) == "" || origin(m.TokenEndpoint) == "" {
			return nil, errors.New("keyless: discovery: missing endpoints")
		}
		return m, nil
	}
	return nil, errors.Join(errs...)
}

// DeviceAuthorization is the device authorization response (RFC 8628
// section 3.2).
type DeviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// TokenResponse is a successful token endpoint response.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	// IDToken is an OpenID Provider's ID token, when it sent one.
	IDToken string `json:"id_token"`
	// IssuedTokenType is set by token exchange (RFC 8693 section 2.2.1).
	IssuedTokenType string `json:"issued_token_type"`
}

// OAuthError is an error response from the token or device endpoint
// (RFC 6749 section 5.2).
type OAuthError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *OAuthError) Error() string {
	if e.Description != "" {
		return "keyless: " + e.Code + ": " + e.Description
	}
	return fmt.Sprintf("keyless: %s (HTTP %d)", e.Code, e.Status)
}

// Flow runs the device authorization grant with DPoP for one client.
type Flow struct {
	Fetcher  *Fetcher
	Meta     *Metadata
	ClientID string
	// Bearer: the server does not do DPoP (an external IdP whose metadata
	// lists no dpop_signing_alg_values_supported). Requests then carry no
	// proof, and only a Bearer token is accepted. False: every request
	// carries a proof and only a DPoP-bound token is accepted.
	Bearer bool
	// Sleep waits d or until ctx ends; nil means a timer. Tests inject it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// State is one step of the flow reported to the page.
type State struct {
	Status      string        // "pending", "slow_down"
	Interval    time.Duration // current polling interval
	SecondsLeft int
}

// Start requests a device code and user code (RFC 8628 section 3.1). The
// request carries a DPoP proof so the server can bind the device code to
// this key.
func (f *Flow) Start(ctx context.Context, scope []string) (*DeviceAuthorization, error) {
	form := map[string][]string{}
	if len(scope) > 0 {
		form["scope"] = []string{strings.Join(scope, " ")}
	}
	resp, err := f.post(ctx, f.Meta.DeviceAuthorizationEndpoint, form)
	if err != nil {
		return nil, err
	}
	da, err := decodeDeviceAuthorization(resp.Body)
	if err != nil || da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return nil, errors.New("keyless: malformed device authorization response")
	}
	if da.Interval <= 0 {
		da.Interval = 5 // RFC 8628 section 3.2 default
	}
	return da, nil
}

// Poll polls the token endpoint until the user approves or denies, the code
// expires, or ctx is cancelled. It waits interval seconds between polls and
// adds 5 seconds for every slow_down, for this and all later polls (RFC 8628
// section 3.5).
//
// https://www.rfc-editor.org/rfc/rfc8628#section-3.5
func (f *Flow) Poll(ctx context.Context, da *DeviceAuthorization, onState func(State)) (*TokenResponse, error) {
	interval := time.Duration(da.Interval) * time.Second
	deadline := f.now().Add(time.Duration(da.ExpiresIn) * time.Second)
	status := "pending"
	for {
		if da.ExpiresIn > 0 && !f.now().Before(deadline) {
			return nil, ErrExpired
		}
		if onState != nil {
			onState(State{Status: status, Interval: interval, SecondsLeft: int(deadline.Sub(f.now()).Seconds())})
		}
		if err := f.sleep(ctx, interval); err != nil {
			return nil, err
		}
		tok, err := f.Token(ctx, map[string][]string{"grant_type": {grantDeviceCode}, "device_code": {da.DeviceCode}})
		var oe *OAuthError
		switch {
		case err == nil:
			return tok, nil
		case errors.As(err, &oe) && oe.Code == "authorization_pending":
			status = "pending"
		case errors.As(err, &oe) && oe.Code == "slow_down":
			interval += 5 * time.Second
			status = "slow_down"
		case errors.As(err, &oe) && oe.Code == "access_denied":
			return nil, ErrDenied
		case errors.As(err, &oe) && oe.Code == "expired_token":
			return nil, ErrExpired
		default:
			return nil, err
		}
	}
}

// Token makes a token request with DPoP (device code, token exchange or
// refresh) and insists on a DPoP-bound answer; with Bearer, without a
// proof, insisting on a Bearer answer.
//
// https://www.rfc-editor.org/rfc/rfc9449#section-5
func (f *Flow) Token(ctx context.Context, form map[string][]string) (*TokenResponse, error) {
	resp, err := f.post(ctx, f.Meta.TokenEndpoint, form)
	if err != nil {
		return nil, err
	}
	tr, err := decodeTokenResponse(resp.Body)
	if err != nil || tr.AccessToken == "" {
		return nil, errors.New("keyless: malformed token response")
	}
	switch {
	case f.Bearer && !strings.EqualFold(tr.TokenType, "Bearer"):
		return nil, ErrNotBearer
	case !f.Bearer && !strings.EqualFold(tr.TokenType, "DPoP"):
		return nil, ErrNotDPoP
	}
	return tr, nil
}

// Exchange trades a device-flow access token for a lease (RFC 8693).
func (f *Flow) Exchange(ctx context.Context, subjectToken string, scope []string) (*TokenResponse, error) {
	return f.ExchangeAs(ctx, subjectToken, tokenTypeAccess, scope)
}

// ExchangeAs trades a subject token of the given RFC 8693 token type URI
// for a lease.
//
// https://www.rfc-editor.org/rfc/rfc8693#section-2.1
func (f *Flow) ExchangeAs(ctx context.Context, subjectToken, subjectTokenType string, scope []string) (*TokenResponse, error) {
	form := map[string][]string{
		"grant_type":         {grantTokenExchange},
		"subject_token":      {subjectToken},
		"subject_token_type": {subjectTokenType},
	}
	if len(scope) > 0 {
		form["scope"] = []string{strings.Join(scope, " ")}
	}
	return f.Token(ctx, form)
}

// Refresh uses a DPoP-bound refresh (renewal) token.
func (f *Flow) Refresh(ctx context.Context, refreshToken string) (*TokenResponse, error) {
	return f.Token(ctx, map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

func (f *Flow) post(ctx context.Context, endpoint string, form map[string][]string) (*Response, error) {
	form["client_id"] = []string{f.ClientID}
	req := &Request{
		Method: "POST",
		URL:    endpoint,
		Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
		Body:   []byte(encodeForm(form)),
	}
	var resp *Response
	var err error
	if f.Bearer {
		resp, err = f.Fetcher.Transport.Do(ctx, req)
	} else {
		resp, err = f.Fetcher.Do(ctx, req, "")
	}
	if err != nil {
		return nil, err
	}
	if resp.Status/100 != 2 {
		oe := &OAuthError{Status: resp.Status}
		if decodeError(resp.Body, oe) != nil || oe.Code == "" {
			oe.Code = "server_error"
		}
		return nil, oe
	}
	return resp, nil
}

func (f *Flow) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Flow) sleep(ctx context.Context, d time.Duration) error {
	if f.Sleep != nil {
		return f.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
