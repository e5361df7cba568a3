package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Metadata is what keyless reads from an issuer's metadata document.
type Metadata struct {
	Issuer                      string   `json:"issuer"`
	JWKSURI                     string   `json:"jwks_uri"`
	AuthorizationEndpoint       string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint               string   `json:"token_endpoint,omitempty"`
	DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint,omitempty"`
	IDTokenSigningAlgs          []string `json:"id_token_signing_alg_values_supported,omitempty"`
	DPoPSigningAlgs             []string `json:"dpop_signing_alg_values_supported,omitempty"`
	// Date is the server's Date header (zero if absent), for the clock
	// skew check.
	Date time.Time `json:"-"`
}

// maxDocSize bounds a metadata document or a JWKS.
const maxDocSize = 1 << 20

// MetadataURLs are where an issuer's metadata is looked for, in order:
// OpenID Connect Discovery (issuer + /.well-known/openid-configuration),
// then RFC 8414 (the well-known path inserted between host and the
// issuer's path).
//
// https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfigurationRequest
// https://www.rfc-editor.org/rfc/rfc8414#section-3.1
func MetadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return nil, errors.New("federation: issuer is not an absolute URL")
	}
	oidc := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	as := u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + path
	return []string{oidc, as}, nil
}

// fetchMetadata reads the first metadata document that answers and names
// issuer exactly (OpenID Connect Discovery section 4.3, RFC 8414 section
// 3.3).
func fetchMetadata(ctx context.Context, c *http.Client, issuer string) (*Metadata, error) {
	urls, err := MetadataURLs(issuer)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, u := range urls {
		md, err := fetchMetadataAt(ctx, c, u, issuer)
		if err == nil {
			return md, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func fetchMetadataAt(ctx context.Context, c *http.Client, u, issuer string) (*Metadata, error) {
	b, date, err := get(ctx, c, u, "application/json")
	if err != nil {
		return nil, err
	}
	var md Metadata
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMetadata, u, err)
	}
	if md.Issuer != issuer {
		return nil, fmt.Errorf("%w: %s names issuer %q, want %q", ErrMetadata, u, md.Issuer, issuer)
	}
	if !httpsOrLoopback(md.JWKSURI) {
		return nil, fmt.Errorf("%w: %s: jwks_uri must be https (http only on loopback)", ErrMetadata, u)
	}
	md.Date = date
	return &md, nil
}

// get fetches u, bounded in size, and returns the body and Date header.
func get(ctx context.Context, c *http.Client, u, accept string) ([]byte, time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("federation: %w", err)
	}
	req.Header.Set("Accept", accept)
	resp, err := c.Do(req)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, time.Time{}, fmt.Errorf("%w: %s: status %d", ErrUnreachable, u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocSize+1))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %s: %w", ErrUnreachable, u, err)
	}
	if len(b) > maxDocSize {
		return nil, time.Time{}, fmt.Errorf("federation: %s: response too large", u)
	}
	date, _ := http.ParseTime(resp.Header.Get("Date"))
	return b, date, nil
}
