package memstore_test

import (
	"testing"

	"github.com/keyless-dev/keyless/sidecar/nonce"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/store/storetest"
)

// The embedded stores pass the same suite as the shared ones
// (redisstore's TestConformance).
func TestConformance(t *testing.T) {
	t.Run("Replay", func(t *testing.T) {
		storetest.TestReplay(t, func(*testing.T) store.Replay { return &memstore.Replay{} })
	})
	t.Run("Revocations", func(t *testing.T) {
		storetest.TestRevocations(t, func(*testing.T) store.Revocations { return &memstore.Revocations{} })
	})
	t.Run("Limiter", func(t *testing.T) {
		storetest.TestLimiter(t, func(*testing.T) ratelimit.Limiter { return &ratelimit.Memory{} })
	})
	t.Run("NonceKey", func(t *testing.T) {
		// One process: both "replicas" hold the same static key.
		storetest.TestNonceKey(t, func(*testing.T) (a, b nonce.KeySource) {
			k := nonce.RandomKey()
			return k, k
		})
	})
}
