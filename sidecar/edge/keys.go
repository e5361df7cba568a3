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

type keyCache struct {
	url     string
	fetch   func(ctx context.Context, url string) ([]byte, error)
	now     func() time.Time
	mu      sync.Mutex
	keys    map[string]*dpop.JWK
	fetched time.Time
	fetches int
}

func (k *keyCache) key(ctx context.Context, kid string) (*dpop.JWK, error) {
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	stale := k.keys == nil || now.Sub(k.fetched) >= keyMaxAge
	if key, ok := k.keys[kid]; ok && !stale {
		return key, nil
	}
	if k.fetches > 0 && now.Sub(k.fetched) < keyRefresh {
		if key, ok := k.keys[kid]; ok {
			return key, nil
		}
		if k.keys == nil {
			return nil, errors.New("edge: JWKS unavailable")
		}
		return nil, errUnknownKey
	}
	k.fetched = now
	k.fetches++
	keys, err := k.load(ctx)
	if err != nil {
		if key, ok := k.keys[kid]; ok {
			return key, nil
		}
		return nil, err
	}
	k.keys = keys
	if key, ok := keys[kid]; ok {
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
