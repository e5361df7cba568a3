package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
)

// TestSharedStoreFirstStart: on a brand-new Redis the issuer's first start
// declares the store fresh, so a proof made before the replicas could serve
// is accepted as soon as the set is seeded (no FutureSkew of 503s), even
// though a replica's watcher found the replay script missing first. Once
// that is recorded in the durable database, a Redis that comes back empty
// is one that lost its data: the restart guard refuses proofs made before.
func TestSharedStoreFirstStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := redistest.Start(t)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	db, err := boltstore.Open(filepath.Join(t.TempDir(), boltstore.FileName), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	until := func(iat time.Time) time.Time {
		return iat.Add(redisstore.DefaultMaxAge + redisstore.DefaultFutureSkew)
	}

	// start runs one issuer start and returns a replica's store once the
	// issuer has seeded Redis.
	start := func(t *testing.T) *redisstore.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		replica, err := openShared(ctx, srv.URL(), 0, 0, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { replica.Close() })
		for !replica.CacheReady() && ctx.Err() == nil {
			// The replica's watcher runs first (it finds the
			// script missing), then the issuer starts.
			if ok, _ := replica.Client().Exists(ctx, "{keyless:rev}:restarts").Result(); ok == 1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		issuer, err := openShared(ctx, srv.URL(), 0, 0, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { issuer.Close() })
		mirrored(ctx, db, issuer, log)
		for {
			if ok, _ := issuer.Seeded(ctx); ok {
				return replica
			}
			if ctx.Err() != nil {
				t.Fatal("the issuer never seeded Redis")
			}
			time.Sleep(time.Millisecond)
		}
	}

	before := time.Now()
	replica := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := replica.Use(ctx, "jkt", "made-before-first-start", until(before)); err != nil {
		t.Fatalf("proof made before the first start: Use = %v, want nil", err)
	}

	beforeLoss := time.Now()
	srv.Restart() // empty, as a Redis without persistence after a crash
	replica = start(t)
	if err := replica.Use(ctx, "jkt", "made-before-the-loss", until(beforeLoss)); !errors.Is(err, redisstore.ErrStoreReset) {
		t.Fatalf("proof made before Redis lost its data: Use = %v, want ErrStoreReset", err)
	}
}
