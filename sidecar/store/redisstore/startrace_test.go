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
		issuer, err := redisstore.New(srv.URL(), redisstore.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		replica, err := redisstore.New(srv.URL(), redisstore.Options{Prefix: prefix})
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
