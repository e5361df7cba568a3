package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/token"
)

// External verifies subject tokens from an external OIDC issuer listed in
// config: it reads the issuer's discovery document once (the `issuer`
// member must equal Issuer exactly, OpenID Connect Discovery section 4.3),
// then verifies tokens against its JWKS through a [token.RemoteJWKS]
// (cached, refreshed, rate-limited), with iss, aud and exp checks.
//
// Tokens must be RFC 9068 access tokens (typ at+jwt, ES256) with
// client_id; that is what [token.JWTVerifier] accepts.
type External struct {
	// Issuer is the issuer URL; required.
	Issuer string
	// Audience must be in the token's aud; required.
	Audience string
	// Client fetches discovery and JWKS; nil means a client with a 10 s
	// timeout.
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RetryEvery bounds discovery attempts after a failure; zero means
	// 30 s.
	RetryEvery time.Duration

	mu      sync.Mutex
	v       *token.JWTVerifier
	lastTry time.Time
	lastErr error
	jwksURI string
}

var _ token.Verifier = (*External)(nil)

// maxDiscoverySize bounds the discovery document.
const maxDiscoverySize = 1 << 20

// Verify implements token.Verifier. A discovery failure is not
// token.ErrInvalidToken: the caller answers 503, never a pass.
func (e *External) Verify(ctx context.Context, raw string) (*token.Claims, error) {
	v, err := e.verifier(ctx)
	if err != nil {
		return nil, err
	}
	return v.Verify(ctx, raw)
}

// JWKSURI is the discovered jwks_uri ("" before discovery).
func (e *External) JWKSURI() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.jwksURI
}

func (e *External) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *External) verifier(ctx context.Context) (*token.JWTVerifier, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.v != nil {
		return e.v, nil
	}
	retry := e.RetryEvery
	if retry <= 0 {
		retry = 30 * time.Second
	}
	now := e.now()
	if !e.lastTry.IsZero() && now.Sub(e.lastTry) < retry {
		return nil, fmt.Errorf("lease: discovery of %s failed recently: %w", e.Issuer, e.lastErr)
	}
	e.lastTry = now
	jwks, err := e.discover(ctx)
	if err != nil {
		e.lastErr = err
		return nil, err
	}
	e.jwksURI = jwks
	e.v = &token.JWTVerifier{
		Keys:     &token.RemoteJWKS{URL: jwks, Client: e.Client, Now: e.Now},
		Issuer:   e.Issuer,
		Audience: e.Audience,
		Now:      e.Now,
	}
	return e.v, nil
}

// discover fetches the OpenID Connect discovery document, falling back to
// RFC 8414 authorization server metadata, and returns jwks_uri.
//
// https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig
// https://www.rfc-editor.org/rfc/rfc8414#section-3
func (e *External) discover(ctx context.Context) (string, error) {
	if e.Issuer == "" || e.Audience == "" {
		return "", errors.New("lease: external issuer needs Issuer and Audience")
	}
	var errs []error
	for _, wk := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		jwks, err := e.fetchMetadata(ctx, strings.TrimSuffix(e.Issuer, "/")+wk)
		if err == nil {
			return jwks, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

func (e *External) fetchMetadata(ctx context.Context, u string) (string, error) {
	c := e.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("lease: discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("lease: discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("lease: discovery: %s: status %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoverySize+1))
	if err != nil || len(b) > maxDiscoverySize {
		return "", fmt.Errorf("lease: discovery: %s: unreadable or too large", u)
	}
	var md struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return "", fmt.Errorf("lease: discovery: %s: %w", u, err)
	}
	if md.Issuer != e.Issuer {
		return "", fmt.Errorf("lease: discovery: %s names issuer %q, want %q", u, md.Issuer, e.Issuer)
	}
	ju, err := url.Parse(md.JWKSURI)
	if err != nil || !ju.IsAbs() || (ju.Scheme != "https" && !(ju.Scheme == "http" && isLoopback(ju.Hostname()))) {
		return "", fmt.Errorf("lease: discovery: %s: jwks_uri must be https (http only on loopback)", u)
	}
	return md.JWKSURI, nil
}

func isLoopback(h string) bool {
	return h == "localhost" || h == "::1" || strings.HasPrefix(h, "127.")
}
