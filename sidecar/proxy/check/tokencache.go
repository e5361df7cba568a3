package check

import (
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/token/atjwt"
)

// TokenCache holds verified lease claims by the token's SHA-256 until the
// token expires, so a request pays for one signature check (the proof's),
// not two. Revocation is not cached: it is checked on every request. When
// full it drops expired entries, and if none can go, everything: a miss only
// costs a verification.
type TokenCache struct {
	max int
	mu  sync.RWMutex
	m   map[[32]byte]cached
}

type cached struct {
	claims *atjwt.Claims
	until  time.Time
}

// NewTokenCache holds at most max entries.
func NewTokenCache(max int) *TokenCache {
	return &TokenCache{max: max, m: make(map[[32]byte]cached)}
}

// Get returns the claims cached under k, or nil.
func (c *TokenCache) Get(k [32]byte, now time.Time) *atjwt.Claims {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil
	}
	return e.claims
}

// Put caches claims under k until until.
func (c *TokenCache) Put(k [32]byte, claims *atjwt.Claims, until, now time.Time) {
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
