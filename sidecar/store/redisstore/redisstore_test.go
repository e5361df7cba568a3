package redisstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/nonce"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
	"github.com/keyless-dev/keyless/sidecar/store/storetest"
)

var prefixes atomic.Int64

// newPrefix isolates one test's keys on a shared server.
func newPrefix() string { return fmt.Sprintf("t%d:keyless:", prefixes.Add(1)) }

// open returns a Store on srv under prefix, closed at cleanup. The replay
// epoch is set an hour back (as a first deployment may) and the revocation
// set seeded empty (as the issuer does at start).
func open(t testing.TB, srv *redistest.Server, prefix string, opts redisstore.Options) *redisstore.Store {
	t.Helper()
	return openURL(t, srv.URL(), prefix, opts)
}

func openURL(t testing.TB, url, prefix string, opts redisstore.Options) *redisstore.Store {
	t.Helper()
	opts.Prefix = prefix
	ctx := context.Background()
	// Initialize through a store with no watcher first: a watcher that
	// finds the replay script missing would (rightly) treat the server as
	// restarted and start the restart guard.
	init := opts
	init.NoCache, init.NoBatch = true, true
	first, err := redisstore.New(url, init)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.InitEpoch(ctx, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := first.Reseed(ctx, nil); err != nil {
		t.Fatal(err)
	}
	first.Close()
	s, err := redisstore.New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	for _, tc := range []struct {
		name string
		opts redisstore.Options
	}{
		{"Cached", redisstore.Options{}},
		{"NoCacheNoBatch", redisstore.Options{NoCache: true, NoBatch: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("Replay", func(t *testing.T) {
				storetest.TestReplay(t, func(t *testing.T) store.Replay { return open(t, srv, newPrefix(), tc.opts) })
			})
			t.Run("Revocations", func(t *testing.T) {
				storetest.TestRevocations(t, func(t *testing.T) store.Revocations { return open(t, srv, newPrefix(), tc.opts) })
			})
			// Two replicas' views of one Redis: revocations written at one
			// and read at the other pass the same suite. With the cache a
			// revocation reaches the other replica within MaxStale, not at
			// once (TestRevocationReachesReplica), so only without it.
			if !tc.opts.NoCache {
				return
			}
			t.Run("RevocationsAcrossReplicas", func(t *testing.T) {
				storetest.TestRevocations(t, func(t *testing.T) store.Revocations {
					p := newPrefix()
					return split{open(t, srv, p, tc.opts), open(t, srv, p, tc.opts)}
				})
			})
		})
	}
	t.Run("Limiter", func(t *testing.T) {
		storetest.TestLimiter(t, func(t *testing.T) ratelimit.Limiter {
			return open(t, srv, newPrefix(), redisstore.Options{NoCache: true})
		})
	})
	t.Run("NonceKey", func(t *testing.T) {
		storetest.TestNonceKey(t, func(t *testing.T) (a, b nonce.KeySource) {
			p := newPrefix()
			return open(t, srv, p, redisstore.Options{NoCache: true}), open(t, srv, p, redisstore.Options{NoCache: true})
		})
	})
}

// split writes through one replica and reads through another.
type split struct{ w, r store.Revocations }

func (s split) Revoke(ctx context.Context, r store.Revocation, until time.Time) error {
	return s.w.Revoke(ctx, r, until)
}

func (s split) AnyRevoked(ctx context.Context, rs ...store.Revocation) (bool, error) {
	return s.r.AnyRevoked(ctx, rs...)
}

// TestConformanceCluster runs the suite on a one-node Redis Cluster through
// a Cluster client: every command the store sends keeps to one slot
// (a Cluster refuses others with CROSSSLOT), and pub/sub works there.
func TestConformanceCluster(t *testing.T) {
	srv := redistest.StartCluster(t)
	url := srv.ClusterURL()
	t.Run("Replay", func(t *testing.T) {
		storetest.TestReplay(t, func(t *testing.T) store.Replay { return openURL(t, url, newPrefix(), redisstore.Options{}) })
	})
	t.Run("Revocations", func(t *testing.T) {
		storetest.TestRevocations(t, func(t *testing.T) store.Revocations { return openURL(t, url, newPrefix(), redisstore.Options{}) })
	})
	t.Run("Limiter", func(t *testing.T) {
		storetest.TestLimiter(t, func(t *testing.T) ratelimit.Limiter {
			return openURL(t, url, newPrefix(), redisstore.Options{NoCache: true})
		})
	})
	t.Run("NonceKey", func(t *testing.T) {
		storetest.TestNonceKey(t, func(t *testing.T) (a, b nonce.KeySource) {
			p := newPrefix()
			return openURL(t, url, p, redisstore.Options{NoCache: true}), openURL(t, url, p, redisstore.Options{NoCache: true})
		})
	})
	t.Run("CacheInSync", func(t *testing.T) {
		a := openURL(t, url, newPrefix(), redisstore.Options{})
		waitUntil(t, 2*time.Second, "the revocation cache to be in sync through a Cluster client", a.CacheReady)
	})
	t.Run("Epoch", func(t *testing.T) {
		s := openURL(t, url, newPrefix(), redisstore.Options{NoCache: true})
		e, err := s.Epoch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(e) < 59*time.Minute {
			t.Errorf("Epoch = %v, want the InitEpoch time an hour ago", e)
		}
	})
}
