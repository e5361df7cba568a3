package redisstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
)

// TestSeededMarkerSurvivesStart runs keyless's start-up sequence on a
// brand-new Redis (no keys under the prefix, empty script cache) 100 times:
// the issuer's store and a proxy replica's store start their watchers,
// which find the replay script missing and record a restart, while the
// issuer seeds the revocation set. However these interleave, once the
// seeding returned and both watchers have read the set, the set must be
// seeded: a lost marker makes every replica answer 503 "not seeded" until
// the next re-seed.
func TestSeededMarkerSurvivesStart(t *testing.T) {
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	const starts = 100
	lost := 0
	for i := range starts {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := admin.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		prefix := newPrefix()
		// A short MaxStale makes the watchers ping often, so their
		// caches report ready soon after the set is seeded.
		opts := redisstore.Options{Prefix: prefix, MaxStale: 40 * time.Millisecond}
		issuer, err := redisstore.New(srv.URL(), opts)
		if err != nil {
			t.Fatal(err)
		}
		replica, err := redisstore.New(srv.URL(), opts)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var seedErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			seedErr = issuer.Reseed(ctx, nil)
		}()
		wg.Wait()
		if seedErr != nil {
			t.Fatalf("start %d: Reseed: %v", i, seedErr)
		}
		// Both caches answer once their watchers read a seeded set; a
		// lost marker keeps them from it, so the wait is bounded.
		ready := time.Now().Add(2 * time.Second)
		for (!issuer.CacheReady() || !replica.CacheReady()) && time.Now().Before(ready) {
			time.Sleep(time.Millisecond)
		}
		seeded, err := issuer.Seeded(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !seeded {
			lost++
			if lost == 3 {
				t.Fatalf("the seeded marker was lost in 3 of %d starts", i+1)
			}
		} else if _, err := replica.AnyRevoked(ctx, store.Revocation{Kind: store.KindJTI, Value: "x"}); err != nil {
			t.Errorf("start %d: replica: %v", i, err)
		}
		issuer.Close()
		replica.Close()
		cancel()
	}
	if lost > 0 {
		t.Errorf("the seeded marker was lost in %d of %d starts", lost, starts)
	}
}

// TestFirstStartNoGuard: on a brand-new Redis a proxy replica's watcher
// may find the replay script missing before the issuer declares the store
// fresh (InitEpoch at its first deployment). The watcher must not start
// the restart guard on buckets that hold nothing yet, or the first
// FutureSkew of proofs after the first start are refused (503).
func TestFirstStartNoGuard(t *testing.T) {
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	ctx := opCtx(t)
	if err := admin.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	prefix := newPrefix()
	replica, err := redisstore.New(srv.URL(), redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	// The watcher's first full read runs checkRestart, which loads the
	// replay script and then counts the load: wait (bounded) until it did.
	for {
		n, err := admin.Keys(ctx, "{"+prefix+"rev}:restarts").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(n) == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the replica's watcher never checked the script")
		}
		time.Sleep(time.Millisecond)
	}
	issuer, err := redisstore.New(srv.URL(), redisstore.Options{Prefix: prefix, NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer issuer.Close()
	if err := issuer.InitEpoch(ctx, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := issuer.Reseed(ctx, nil); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(redisstore.DefaultMaxAge + redisstore.DefaultFutureSkew)
	if err := replica.Use(ctx, "jkt", "first-proof", until); err != nil {
		t.Fatalf("first proof after the first start: Use = %v, want nil", err)
	}
}
