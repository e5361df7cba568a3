package proxy

import (
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/token"
)

// tokenCache holds verified lease claims by the token's SHA-256 until the
// token expires, so a request pays for one signature check (the proof's),
// not two. Revocation is not cached: it is checked on every request. When
// full it drops expired entries, and if none can go, everything: a miss only
// costs a verification.
type tokenCache struct {
	max int
	mu  sync.RWMutex
	m   map[[32]byte]cached
}

type cached struct {
	claims *token.Claims
	until  time.Time
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, m: make(map[[32]byte]cached)}
}

func (c *tokenCache) get(k [32]byte, now time.Time) *token.Claims {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil
	}
	return e.claims
}

func (c *tokenCache) put(k [32]byte, claims *token.Claims, until, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for key, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, key)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	c.m[k] = cached{claims: claims, until: until}
}
