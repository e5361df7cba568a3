package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
)

const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"

// TestReplayAcrossReplicas: a proof accepted by replica A is a replay at
// replica B, and concurrent copies sent to both let exactly one through.
func TestReplayAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	p := newPrefix()
	a, b := open(t, srv, p, redisstore.Options{}), open(t, srv, p, redisstore.Options{})
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	if err := a.Use(ctx, jkt, "j1", until); err != nil {
		t.Fatal(err)
	}
	if err := b.Use(ctx, jkt, "j1", until); !errors.Is(err, dpop.ErrReplay) {
		t.Fatalf("replica B: Use = %v, want dpop.ErrReplay", err)
	}

	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := a
			if i%2 == 1 {
				r = b
			}
			err := r.Use(ctx, jkt, "copied", until)
			if err == nil {
				won.Add(1)
			} else if !errors.Is(err, dpop.ErrReplay) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d of 50 copies across two replicas accepted, want 1", won.Load())
	}
}

// TestRevocationReachesReplica: a revocation at A is seen at B, which
// answers from its cache, within one second (docs/security.md#d9).
func TestRevocationReachesReplica(t *testing.T) {
	srv := redistest.Start(t)
	p := newPrefix()
	a := open(t, srv, p, redisstore.Options{})
	b, calls := openCounted(t, srv, p, redisstore.Options{})
	ctx := context.Background()
	waitCacheWarm(t, b, calls)
	for i := range 5 {
		r := store.Revocation{Kind: store.KindLease, Value: fmt.Sprint("L", i)}
		start := time.Now()
		if err := a.Revoke(ctx, r, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, time.Second, "revocation to reach replica B", func() bool {
			got, err := b.AnyRevoked(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			return got
		})
		t.Logf("revocation %d reached B after %v", i, time.Since(start))
	}
}

// TestCacheAnswersLocally: once in sync, AnyRevoked costs no round trip.
func TestCacheAnswersLocally(t *testing.T) {
	srv := redistest.Start(t)
	s, calls := openCounted(t, srv, newPrefix(), redisstore.Options{})
	ctx := context.Background()
	waitCacheWarm(t, s, calls)
	before := calls.Load()
	for range 100 {
		if _, err := s.AnyRevoked(ctx, store.Revocation{Kind: store.KindSub, Value: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	// A stale check may fall through once or twice on a loaded machine.
	if n := calls.Load() - before; n > 10 {
		t.Errorf("100 AnyRevoked with a warm cache made %d ZMSCORE calls, want about 0", n)
	}
}

// TestCacheResyncAfterReconnect: a revocation published while B's
// subscription is down is not lost: B reads the set again after it
// resubscribes, and answers from Redis meanwhile.
func TestCacheResyncAfterReconnect(t *testing.T) {
	srv := redistest.Start(t)
	p := newPrefix()
	writer := open(t, srv, p, redisstore.Options{NoCache: true})
	b, calls := openCounted(t, srv, p, redisstore.Options{})
	ctx := context.Background()
	waitCacheWarm(t, b, calls)

	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	for i := range 3 {
		r := store.Revocation{Kind: store.KindJKT, Value: fmt.Sprint("k", i)}
		// Cut every subscriber, then revoke at once: the message goes
		// to nobody, B must find it by reading the set again.
		if err := admin.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
		if err := writer.Revoke(ctx, r, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, time.Second, "B to see a revocation made while it was disconnected", func() bool {
			got, err := b.AnyRevoked(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			return got
		})
		// And B's cache comes back: it answers locally again.
		waitCacheWarm(t, b, calls)
		if got, err := b.AnyRevoked(ctx, r); err != nil || !got {
			t.Fatalf("after resync: AnyRevoked = %v, %v; want true", got, err)
		}
	}
}

// TestRateLimitShared: replicas draw from one bucket.
func TestRateLimitShared(t *testing.T) {
	srv := redistest.Start(t)
	p := newPrefix()
	a, b := open(t, srv, p, redisstore.Options{NoCache: true}), open(t, srv, p, redisstore.Options{NoCache: true})
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 1, Burst: 3}
	now := time.Now()
	for i, r := range []*redisstore.Store{a, b, a} {
		res, err := r.Allow(ctx, "app", l, now)
		if err != nil || !res.Allowed {
			t.Fatalf("request %d: %+v, %v; want allowed", i, res, err)
		}
	}
	res, err := b.Allow(ctx, "app", l, now)
	if err != nil || res.Allowed || res.RetryAfter != time.Second {
		t.Fatalf("4th request at B: %+v, %v; want refused, retry after 1s", res, err)
	}
}

// counter is a go-redis hook counting ZMSCORE calls: the round trips the
// cache saves.
type counter struct{ n *atomic.Int64 }

func (c counter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "zmscore" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func openCounted(t *testing.T, srv *redistest.Server, prefix string, opts redisstore.Options) (*redisstore.Store, *atomic.Int64) {
	t.Helper()
	open(t, srv, prefix, redisstore.Options{NoCache: true, NoBatch: true}) // initializes
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	n := new(atomic.Int64)
	c.AddHook(counter{n})
	opts.Prefix = prefix
	s, err := redisstore.NewClient(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); c.Close() })
	return s, n
}

// waitCacheWarm waits until an AnyRevoked is answered without ZMSCORE.
func waitCacheWarm(t *testing.T, s *redisstore.Store, calls *atomic.Int64) {
	t.Helper()
	waitUntil(t, 2*time.Second, "the revocation cache to be in sync", func() bool {
		before := calls.Load()
		if _, err := s.AnyRevoked(context.Background(), store.Revocation{Kind: store.KindSub, Value: "warm"}); err != nil {
			t.Fatal(err)
		}
		return calls.Load() == before
	})
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
