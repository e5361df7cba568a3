// Package oidclogin is keyless's relying party at an upstream OpenID
// Provider, for signing people in on the /device page: discovery, the
// authorization request with PKCE, state and nonce, the code exchange with
// the client secret, and ID-token validation with claim and group
// mapping. The /device page (package authserver) keeps state and cookies;
// this package only speaks to the provider.
//
// # Use
//
//	p := oidclogin.New(cfg, secret, issuerURL+"/device/callback", oidclogin.Options{})
//	u, err := p.AuthCodeURL(ctx, state, nonce, oidclogin.Challenge(verifier))
//	id, err := p.Exchange(ctx, code, verifier, nonce) // id.Subject is "name:sub"
//
// [Provider.Check] is what `keyless doctor` runs for each login.oidc entry.
//
// https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth
package oidclogin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/federation"
)

// Errors, for callers that branch; every error of this package wraps one.
var (
	// ErrProvider: the provider could not be reached or answered
	// something unusable (discovery, JWKS, token endpoint). Retrying later
	// may help.
	ErrProvider = errors.New("oidclogin: identity provider unavailable")
	// ErrDenied: the provider refused (an error at the token endpoint).
	ErrDenied = errors.New("oidclogin: identity provider refused")
	// ErrIDToken: the ID token failed validation. Retrying does not help.
	ErrIDToken = errors.New("oidclogin: invalid ID token")
)

// Options tune a [Provider]; the zero value is usable.
type Options struct {
	// Client talks to the provider; nil means a client with a 10 s
	// timeout.
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MetadataTTL is how long discovery and JWKS are cached before they are
	// read again; zero means 1 hour.
	MetadataTTL time.Duration
	// RefreshInterval is the shortest time between two JWKS reads caused
	// by an unknown kid; zero means 30 seconds. (Discovery and the JWKS
	// for ID tokens are the federation package's, which re-reads them
	// periodically.)
	RefreshInterval time.Duration
}

// Provider is one upstream OpenID Provider. It is safe for concurrent use.
type Provider struct {
	cfg      config.OIDCLogin
	secret   string
	redirect string
	client   *http.Client
	now      func() time.Time
	ttl      time.Duration
	refresh  time.Duration

	// fed validates ID tokens; fedErr is why it could not be built
	// (a config federation refuses), reported on use.
	fed    *federation.Validator
	fedErr error

	mu     sync.Mutex
	meta   *Metadata
	metaAt time.Time
}

// New returns the relying party for cfg. secret is the client secret (read
// from cfg.ClientSecretFile by the caller); redirect is keyless's callback
// URL registered at the provider. Nothing is fetched until first use.
func New(cfg config.OIDCLogin, secret, redirect string, o Options) *Provider {
	p := &Provider{cfg: cfg, secret: secret, redirect: redirect, client: o.Client, now: o.Now,
		ttl: o.MetadataTTL, refresh: o.RefreshInterval}
	if p.client == nil {
		p.client = &http.Client{Timeout: 10 * time.Second}
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.ttl <= 0 {
		p.ttl = time.Hour
	}
	if p.refresh <= 0 {
		p.refresh = 30 * time.Second
	}
	p.fed, p.fedErr = validator(cfg, Options{Client: p.client, Now: p.now, RefreshInterval: p.refresh})
	return p
}

// Name is the provider's configured name.
func (p *Provider) Name() string { return p.cfg.Name }

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// Metadata is the part of the provider's discovery document keyless uses.
//
// https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata
type Metadata struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	IDTokenAlgs           []string `json:"id_token_signing_alg_values_supported"`
	TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
}

// maxBody bounds every response read from the provider.
const maxBody = 1 << 20

// Discover returns the provider's metadata, read at most once per
// MetadataTTL. The document's issuer must equal the configured one
// exactly, and its endpoints must be https (http only on loopback).
//
// https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfigurationValidation
func (p *Provider) Discover(ctx context.Context) (*Metadata, error) {
	p.mu.Lock()
	if p.meta != nil && p.now().Sub(p.metaAt) < p.ttl {
		m := p.meta
		p.mu.Unlock()
		return m, nil
	}
	p.mu.Unlock()
	var m Metadata
	if err := p.getJSON(ctx, strings.TrimSuffix(p.cfg.Issuer, "/")+"/.well-known/openid-configuration", &m); err != nil {
		return nil, err
	}
	if m.Issuer != p.cfg.Issuer {
		return nil, fmt.Errorf("%w: discovery names issuer %q, not the configured %q", ErrProvider, m.Issuer, p.cfg.Issuer)
	}
	for name, u := range map[string]string{"authorization_endpoint": m.AuthorizationEndpoint,
		"token_endpoint": m.TokenEndpoint, "jwks_uri": m.JWKSURI} {
		if !safeURL(u) {
			return nil, fmt.Errorf("%w: discovery %s %q is not an https URL", ErrProvider, name, u)
		}
	}
	p.mu.Lock()
	p.meta, p.metaAt = &m, p.now()
	p.mu.Unlock()
	return &m, nil
}

// safeURL: absolute, https, or http on a loopback host.
func safeURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil {
		return false
	}
	h := u.Hostname()
	return u.Scheme == "https" || u.Scheme == "http" && (h == "localhost" || h == "::1" || strings.HasPrefix(h, "127."))
}

func (p *Provider) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProvider, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProvider, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrProvider, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %d", ErrProvider, u, resp.StatusCode)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %s: not JSON: %v", ErrProvider, u, err)
	}
	return nil
}

// AuthCodeURL is where to send the browser: an authorization request with
// response_type=code, the configured scopes, state, nonce, and the PKCE
// challenge (S256).
//
// https://openid.net/specs/openid-connect-core-1_0.html#AuthRequest
// https://www.rfc-editor.org/rfc/rfc7636#section-4.3
func (p *Provider) AuthCodeURL(ctx context.Context, state, nonce, challenge string) (string, error) {
	m, err := p.Discover(ctx)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(m.AuthorizationEndpoint)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrProvider, err)
	}
	q := u.Query()
	q.Set("response_type", "code")
	q.Set("client_id", p.cfg.ClientID)
	q.Set("redirect_uri", p.redirect)
	q.Set("scope", strings.Join(p.cfg.RequestScopes(), " "))
	q.Set("state", state)
	q.Set("nonce", nonce)
	q.Set("code_challenge", challenge)
	q.Set("code_challenge_method", "S256")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Identity is a user the provider signed in, after mapping.
type Identity struct {
	// Provider is the login provider's name.
	Provider string
	// Subject is "Provider:value of the subject claim": namespaced, so it
	// can never equal a sandbox user or another provider's user.
	Subject string
	// Groups are the policy groups, through the provider's group_map.
	Groups []string
}

// Exchange redeems an authorization code (with the PKCE verifier) at the
// token endpoint and validates the returned ID token against nonce. The
// client authenticates with client_secret_basic, or client_secret_post
// when the provider lists only that.
//
// https://openid.net/specs/openid-connect-core-1_0.html#TokenRequest
// https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1
func (p *Provider) Exchange(ctx context.Context, code, verifier, nonce string) (*Identity, error) {
	m, err := p.Discover(ctx)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {p.redirect}, "code_verifier": {verifier}}
	post := len(m.TokenAuthMethods) > 0 && !slices.Contains(m.TokenAuthMethods, "client_secret_basic") &&
		slices.Contains(m.TokenAuthMethods, "client_secret_post")
	if post {
		form.Set("client_id", p.cfg.ClientID)
		form.Set("client_secret", p.secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProvider, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if !post {
		// RFC 6749 section 2.3.1: both parts form-encoded first.
		req.SetBasicAuth(url.QueryEscape(p.cfg.ClientID), url.QueryEscape(p.secret))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: token endpoint: %v", ErrProvider, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%w: token endpoint: %v", ErrProvider, err)
	}
	var tr struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error"`
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" || json.Unmarshal(b, &tr) != nil {
		return nil, fmt.Errorf("%w: token endpoint answered %d without JSON", ErrProvider, resp.StatusCode)
	}
	switch {
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("%w: token endpoint answered %d", ErrProvider, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		// RFC 6749 section 5.2: the error code is safe to log; the
		// description may echo input, so it is left out.
		return nil, fmt.Errorf("%w: token endpoint: %s", ErrDenied, errorCode(tr.Error))
	case tr.IDToken == "":
		return nil, fmt.Errorf("%w: the token response has no id_token (is the openid scope allowed for the client?)", ErrIDToken)
	}
	return p.Validate(ctx, tr.IDToken, nonce)
}

// errorCode keeps an RFC 6749 error code printable and short for logs.
func errorCode(s string) string {
	if s == "" || len(s) > 64 || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
		return "unknown_error"
	}
	return s
}
