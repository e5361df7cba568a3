package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Defaults for [RemoteJWKS].
const (
	// DefaultRefreshInterval is the least time between two fetches made
	// because of an unknown kid (docs/security.md#attacker-issuer: at most one JWKS
	// refresh per refresh interval).
	DefaultRefreshInterval = 30 * time.Second
	// DefaultMaxAge is how long a fetched set is used before it is fetched
	// again on the next lookup, so removed keys stop being trusted.
	DefaultMaxAge = 15 * time.Minute
	// maxJWKSSize bounds a JWKS response.
	maxJWKSSize = 1 << 20
)

// RemoteJWKS is a [KeySource] backed by a JWK Set fetched over HTTP (an
// issuer's jwks_uri) and cached. An unknown kid triggers a refetch, at most
// once per RefreshInterval however many requests carry unknown kids, so
// random kids cannot make it hammer the issuer. Only EC P-256 keys usable
// for ES256 signatures are taken from the set.
type RemoteJWKS struct {
	// URL of the JWK Set; required.
	URL string
	// Client fetches; nil means a client with a 10 s timeout.
	Client *http.Client
	// RefreshInterval: zero means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// MaxAge: zero means DefaultMaxAge.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu        sync.Mutex
	keys      map[string]*ecdsa.PublicKey
	fetchedAt time.Time // last attempt, successful or not
	fetches   int
}

var _ KeySource = (*RemoteJWKS)(nil)

// VerificationKey implements [KeySource].
func (r *RemoteJWKS) VerificationKey(ctx context.Context, kid string) (crypto.PublicKey, error) {
	now := r.now()
	// One lock around lookup and fetch: concurrent misses wait for one
	// fetch instead of each making their own.
	r.mu.Lock()
	defer r.mu.Unlock()
	maxAge := r.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	interval := r.RefreshInterval
	if interval <= 0 {
		interval = DefaultRefreshInterval
	}
	stale := r.keys == nil || now.Sub(r.fetchedAt) >= maxAge
	if k, ok := r.keys[kid]; ok && !stale {
		return k, nil
	}
	if r.fetches > 0 && now.Sub(r.fetchedAt) < interval {
		if k, ok := r.keys[kid]; ok {
			return k, nil
		}
		if r.keys == nil {
			return nil, errors.New("token: JWKS unavailable")
		}
		return nil, ErrUnknownKey
	}
	r.fetchedAt = now
	r.fetches++
	keys, err := r.fetch(ctx)
	if err != nil {
		if k, ok := r.keys[kid]; ok {
			return k, nil // keep serving the last good set
		}
		return nil, err
	}
	r.keys = keys
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return nil, ErrUnknownKey
}

// Fetches reports how many times the set was fetched (for tests and
// metrics).
func (r *RemoteJWKS) Fetches() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fetches
}

func (r *RemoteJWKS) fetch(ctx context.Context) (map[string]*ecdsa.PublicKey, error) {
	c := r.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("token: JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token: JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("token: JWKS: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("token: JWKS: %w", err)
	}
	if len(body) > maxJWKSSize {
		return nil, errors.New("token: JWKS: response too large")
	}
	return parseJWKS(body)
}

// parseJWKS keeps the EC P-256 public keys with a kid that may sign ES256.
func parseJWKS(body []byte) (map[string]*ecdsa.PublicKey, error) {
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("token: JWKS: %w", err)
	}
	keys := make(map[string]*ecdsa.PublicKey)
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if k.KeyID() == "" || (k.Algorithm().String() != "" && k.Algorithm().String() != Alg) ||
			(k.KeyUsage() != "" && k.KeyUsage() != string(jwk.ForSignature)) {
			continue
		}
		var pub ecdsa.PublicKey
		if err := k.Raw(&pub); err != nil || pub.Curve != elliptic.P256() {
			continue
		}
		keys[k.KeyID()] = &pub
	}
	return keys, nil
}

func (r *RemoteJWKS) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
