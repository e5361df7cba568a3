package dpop

import (
	"strings"
	"sync"
)

// DefaultHeaderCacheSize bounds a [HeaderCache] with Max zero.
const DefaultHeaderCacheSize = 4096

// maxCachedHeader bounds the length of a header segment the cache keeps;
// longer ones (no real key's header comes near it: an RSA-4096 jwk is
// about 1 KiB of base64url) are always decoded.
const maxCachedHeader = 2048

// HeaderCache remembers, by the exact base64url header segment, the
// outcome of a proof header that passed the header checks of RFC 9449
// section 4.3 (typ, alg, no crit or b64, a public jwk that fits alg): the
// algorithm, the key and its thumbprint. Every proof of one key carries a
// byte-identical header, so the proxy decodes it once. The header is a
// pure function of that segment, so a hit decides exactly what decoding
// it again would; only the alg allow-list, which depends on the options,
// is checked again. Headers that failed a check are never kept, the
// signature and every claim are verified on every proof, and the cache is
// bounded (when full it starts over). Safe for concurrent use; the zero
// value is ready.
//
// https://www.rfc-editor.org/rfc/rfc9449#section-4.3
type HeaderCache struct {
	// Max is the number of headers kept; zero means
	// DefaultHeaderCacheSize.
	Max int

	mu sync.RWMutex
	m  map[string]*header
}

func (c *HeaderCache) get(seg string) *header {
	if c == nil || len(seg) > maxCachedHeader {
		return nil
	}
	c.mu.RLock()
	h := c.m[seg]
	c.mu.RUnlock()
	return h
}

func (c *HeaderCache) put(seg string, h *header) {
	if c == nil || len(seg) > maxCachedHeader {
		return
	}
	limit := c.Max
	if limit <= 0 {
		limit = DefaultHeaderCacheSize
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= limit {
		// Starting over keeps the bound without bookkeeping per hit;
		// filling it takes max distinct valid keys, and costs only a
		// decode per proof until the keys in use are back.
		c.m = make(map[string]*header, min(limit, 256))
	}
	// A copy: seg is a slice of the whole proof, which must not be kept.
	c.m[strings.Clone(seg)] = h
}

// Len reports how many headers are kept.
func (c *HeaderCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
