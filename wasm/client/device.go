package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Grant types.
const (
	grantDeviceCode    = "urn:ietf:params:oauth:grant-type:device_code"
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
)

// Terminal outcomes of a device flow.
var (
	ErrDenied  = errors.New("keyless: the user denied the request")
	ErrExpired = errors.New("keyless: the code expired before it was approved")
	// ErrNotDPoP: the server issued a token that is not DPoP-bound; RFC 9449
	// section 5 says the client MUST discard it.
	ErrNotDPoP = errors.New("keyless: token response is not DPoP-bound")
)

// Metadata is the part of RFC 8414 authorization server metadata we use.
type Metadata struct {
	Issuer                      string `json:"issuer"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	TokenEndpoint               string `json:"token_endpoint"`
	RevocationEndpoint          string `json:"revocation_endpoint"`
}

// Discover fetches RFC 8414 metadata and checks that it names the issuer
// it was fetched for (RFC 8414 section 3.3).
//
// https://www.rfc-editor.org/rfc/rfc8414#section-3
func Discover(ctx context.Context, t Transport, issuer string) (*Metadata, error) {
	issuer = strings.TrimSuffix(issuer, "/")
	resp, err := t.Do(ctx, &Request{Method: "GET", URL: issuer + "/.well-known/oauth-authorization-server", Header: map[string]string{"Accept": "application/json"}})
	if err != nil {
		return nil, err
	}
	if resp.Status != 200 {
		return nil, fmt.Errorf("keyless: discovery: HTTP %d", resp.Status)
	}
	var m Metadata
	if err := json.Unmarshal(resp.Body, &m); err != nil {
		return nil, fmt.Errorf("keyless: discovery: %w", err)
	}
	if strings.TrimSuffix(m.Issuer, "/") != issuer {
		return nil, errors.New("keyless: discovery: issuer mismatch")
	}
	if origin(m.DeviceAuthorizationEndpoint) == "" || origin(m.TokenEndpoint) == "" {
		return nil, errors.New("keyless: discovery: missing endpoints")
	}
	return &m, nil
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
	form := url.Values{}
	if len(scope) > 0 {
		form.Set("scope", strings.Join(scope, " "))
	}
	resp, err := f.post(ctx, f.Meta.DeviceAuthorizationEndpoint, form)
	if err != nil {
		return nil, err
	}
	var da DeviceAuthorization
	if err := json.Unmarshal(resp.Body, &da); err != nil || da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return nil, errors.New("keyless: malformed device authorization response")
	}
	if da.Interval <= 0 {
		da.Interval = 5 // RFC 8628 section 3.2 default
	}
	return &da, nil
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
		tok, err := f.Token(ctx, url.Values{"grant_type": {grantDeviceCode}, "device_code": {da.DeviceCode}})
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
// refresh) and insists on a DPoP-bound answer.
func (f *Flow) Token(ctx context.Context, form url.Values) (*TokenResponse, error) {
	resp, err := f.post(ctx, f.Meta.TokenEndpoint, form)
	if err != nil {
		return nil, err
	}
	var tr TokenResponse
	if err := json.Unmarshal(resp.Body, &tr); err != nil || tr.AccessToken == "" {
		return nil, errors.New("keyless: malformed token response")
	}
	if !strings.EqualFold(tr.TokenType, "DPoP") {
		return nil, ErrNotDPoP
	}
	return &tr, nil
}

// Exchange trades a device-flow access token for a lease (RFC 8693).
func (f *Flow) Exchange(ctx context.Context, subjectToken string, scope []string) (*TokenResponse, error) {
	form := url.Values{
		"grant_type":         {grantTokenExchange},
		"subject_token":      {subjectToken},
		"subject_token_type": {tokenTypeAccess},
	}
	if len(scope) > 0 {
		form.Set("scope", strings.Join(scope, " "))
	}
	return f.Token(ctx, form)
}

// Refresh uses a DPoP-bound refresh (renewal) token.
func (f *Flow) Refresh(ctx context.Context, refreshToken string) (*TokenResponse, error) {
	return f.Token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

func (f *Flow) post(ctx context.Context, endpoint string, form url.Values) (*Response, error) {
	form.Set("client_id", f.ClientID)
	req := &Request{
		Method: "POST",
		URL:    endpoint,
		Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
		Body:   []byte(form.Encode()),
	}
	resp, err := f.Fetcher.Do(ctx, req, "")
	if err != nil {
		return nil, err
	}
	if resp.Status/100 != 2 {
		oe := &OAuthError{Status: resp.Status}
		if json.Unmarshal(resp.Body, oe) != nil || oe.Code == "" {
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
