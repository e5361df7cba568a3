package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/federation"
)

// Defaults for [RemoteJWKS].
const (
	// DefaultRefreshInterval is the least time between two fetches made
	// because of an unknown kid (docs/security.md#attacker-issuer: at
	// most one JWKS refresh per interval).
	DefaultRefreshInterval = federation.DefaultMinRefresh
	// DefaultMaxAge is how long a fetched set is used before it is fetched
	// again, so removed keys stop being trusted.
	DefaultMaxAge = federation.DefaultJWKSMaxAge
)

// RemoteJWKS is a [KeySource] backed by a JWK Set fetched over HTTP (an
// issuer's jwks_uri) and cached, through the same fetcher that keeps
// external issuers' keys ([federation.Remote]). An unknown kid triggers a
// refetch, at most once per RefreshInterval however many requests carry
// unknown kids, so random kids cannot make it hammer the issuer; lookups
// of known kids never wait for a fetch, and concurrent refetches are one.
// Only keys usable for ES256 signatures (EC P-256) are used.
type RemoteJWKS struct {
	// URL of the JWK Set; required.
	URL string
	// Client fetches; nil means http.DefaultClient, each fetch bounded by
	// federation.DefaultFetchTimeout.
	Client *http.Client
	// RefreshInterval: zero means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// MaxAge: zero means DefaultMaxAge. A set older than this is
	// refetched in the background while its keys keep verifying.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	once   sync.Once
	remote *federation.Remote
}

// Readier is a [KeySource] that can say whether it can verify anything at
// all; [RemoteJWKS] implements it.
type Readier interface {
	Ready(ctx context.Context) error
}

var _ Readier = (*RemoteJWKS)(nil)

// Ready reports whether the source holds at least one usable key. With
// none it fetches, at most once per RefreshInterval as for unknown kids,
// and returns why the set is unusable (unreachable, 404, no ES256 key):
// what a readiness probe needs, since every lease would be refused (503)
// until the keys arrive.
func (r *RemoteJWKS) Ready(ctx context.Context) error {
	keys, err := r.source().Keys(ctx, "")
	if err != nil {
		return fmt.Errorf("token: JWKS unavailable: %w (from %s)", err, r.URL)
	}
	for _, k := range keys {
		if _, ok := k.Public.(*ecdsa.PublicKey); ok && k.KID != "" && k.UsableFor(Alg) {
			return nil
		}
	}
	return fmt.Errorf("token: JWKS: %s holds no ES256 signing key", r.URL)
}

var _ KeySource = (*RemoteJWKS)(nil)

func (r *RemoteJWKS) source() *federation.Remote {
	r.once.Do(func() {
		r.remote = &federation.Remote{JWKSURI: r.URL, Name: r.URL, Client: r.Client, Now: r.Now,
			MinRefresh: r.RefreshInterval, JWKSMaxAge: r.MaxAge}
	})
	return r.remote
}

// VerificationKey implements [KeySource]. A kid the issuer does not
// publish is ErrUnknownKey (the token is refused, 401), also inside the
// refresh interval; an issuer that could not be asked is another error
// (503).
func (r *RemoteJWKS) VerificationKey(ctx context.Context, kid string) (crypto.PublicKey, error) {
	keys, err := r.source().Keys(ctx, kid)
	if errors.Is(err, federation.ErrKidUnknown) {
		return nil, ErrUnknownKey
	}
	if err != nil {
		return nil, fmt.Errorf("token: JWKS unavailable: %w", err)
	}
	for _, k := range keys {
		if pub, ok := k.Public.(*ecdsa.PublicKey); ok && k.KID != "" && k.UsableFor(Alg) {
			return pub, nil
		}
	}
	return nil, ErrUnknownKey
}

// Fetches reports how many times the set was fetched (for tests and
// metrics).
func (r *RemoteJWKS) Fetches() int { return r.source().Fetches() }
