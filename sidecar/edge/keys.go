package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/token/atjwt"
)

// The issuer's key set is cached as token.RemoteJWKS caches it: a fetched
// set is used for keyMaxAge, an unknown kid refetches at most once per
// keyRefresh, and the last good set keeps serving when a fetch fails.
const (
	keyMaxAge  = 15 * time.Minute
	keyRefresh = 30 * time.Second
)

// errUnknownKey: the token names a kid the issuer does not publish.
var errUnknownKey = fmt.Errorf("%w: unknown kid", atjwt.ErrInvalid)

// keyCache never holds its lock across a fetch, and no request waits for
// a fetch another request started: in the Worker a request that waits on
// I/O begun in another request's context is cancelled by workerd as hung.
// Before any set was loaded every request that needs one fetches it
// itself (after a failed fetch, not again within keyRefresh).
type keyCache struct {
	url     string
	fetch   func(ctx context.Context, url string) ([]byte, error)
	now     func() time.Time
	mu      sync.Mutex
	keys    map[string]*dpop.JWK
	fetched time.Time // when the last fetch started
	failed  time.Time // when the last fetch failed
	fetches int
}

func (k *keyCache) key(ctx context.Context, kid string) (*dpop.JWK, error) {
	now := k.now()
	k.mu.Lock()
	keys := k.keys
	stale := keys == nil || now.Sub(k.fetched) >= keyMaxAge
	if key, ok := keys[kid]; ok && !stale {
		k.mu.Unlock()
		return key, nil
	}
	if keys == nil && !k.failed.IsZero() && now.Sub(k.failed) < keyRefresh {
		k.mu.Unlock()
		return nil, errors.New("edge: JWKS unavailable")
	}
	if keys != nil && now.Sub(k.fetched) < keyRefresh {
		k.mu.Unlock()
		if key, ok := keys[kid]; ok {
			return key, nil
		}
		return nil, errUnknownKey
	}
	k.fetched = now
	k.fetches++
	k.mu.Unlock()
	loaded, err := k.load(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		k.failed = k.now()
		if key, ok := k.keys[kid]; ok {
			return key, nil
		}
		return nil, err
	}
	k.keys = loaded
	if key, ok := loaded[kid]; ok {
		return key, nil
	}
	return nil, errUnknownKey
}

// load fetches the set and keeps its P-256 signing keys by kid.
func (k *keyCache) load(ctx context.Context) (map[string]*dpop.JWK, error) {
	b, err := k.fetch(ctx, k.url)
	if err != nil {
		return nil, fmt.Errorf("edge: JWKS: %w", err)
	}
	var set struct {
		Keys []struct {
			Kty, Crv, X, Y, Kid, Alg, Use string
			D                             string `json:"d"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("edge: JWKS: %w", err)
	}
	keys := make(map[string]*dpop.JWK)
	for _, j := range set.Keys {
		if j.Kid == "" || j.Kty != "EC" || j.Crv != "P-256" || j.D != "" ||
			(j.Alg != "" && j.Alg != atjwt.Alg) || (j.Use != "" && j.Use != "sig") {
			continue
		}
		keys[j.Kid] = &dpop.JWK{Kty: j.Kty, Crv: j.Crv, X: j.X, Y: j.Y}
	}
	return keys, nil
}
