package boltstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/storetest"
)

func open(t *testing.T, now func() time.Time) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), FileName), Options{NoSync: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRevocationsConformance(t *testing.T) {
	storetest.TestRevocations(t, func(t *testing.T) store.Revocations { return open(t, nil) })
}

// TestLogOrdered: every change is one entry, numbered in order, durable
// across a reopen; a revocation that changes nothing adds none; a reset
// (lifting a block) is an entry of its own; compaction keeps numbers and
// tells a follower that is too far behind to load a snapshot.
func TestLogOrdered(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), FileName)
	db, err := Open(path, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	lease := store.Revocation{Kind: store.KindLease, Value: "L1"}
	alice := store.Revocation{Kind: store.KindSub, Value: "alice"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.Revoke(ctx, lease, now.Add(time.Hour)))
	must(db.Revoke(ctx, lease, now.Add(time.Minute)))     // earlier: no change, no entry
	must(db.Revoke(ctx, lease, now.Add(-time.Minute)))    // over already: no entry
	must(db.Revoke(ctx, alice, now.Add(2*time.Hour)))     // a block
	must(db.Reset(ctx, alice, store.WatermarkUntil(now))) // lifted: a watermark now
	must(db.Close())
	if db, err = Open(path, Options{Now: clock}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, first, last, err := db.Since(ctx, 0, 100)
	must(err)
	if first != 1 || last != 3 || len(got) != 3 {
		t.Fatalf("Since(0) = %d entries, first %d, last %d; want 3, 1, 3", len(got), first, last)
	}
	for i, want := range []struct {
		r     store.Revocation
		until time.Time
		reset bool
	}{{lease, now.Add(time.Hour), false}, {alice, now.Add(2 * time.Hour), false}, {alice, store.WatermarkUntil(now), true}} {
		e := got[i]
		if e.Seq != uint64(i+1) || e.Revocation != want.r || !e.Until.Equal(want.until) || e.Reset != want.reset {
			t.Errorf("entry %d = %+v, want %+v", i, e, want)
		}
	}
	if got, _, _, _ := db.Since(ctx, 2, 100); len(got) != 1 || got[0].Seq != 3 {
		t.Errorf("Since(2) = %+v", got)
	}
	if got, _, _, _ := db.Since(ctx, 0, 2); len(got) != 2 {
		t.Errorf("Since(0, max 2) = %d entries", len(got))
	}
	snap, at, err := db.Snapshot(ctx)
	must(err)
	if at != 3 || len(snap) != 2 {
		t.Errorf("Snapshot = %d entries at %d", len(snap), at)
	}
	// Much later, everything is over and compacted; the next entry keeps
	// counting, and a follower at 1 learns it missed entries.
	now = now.Add(store.WatermarkHorizon + 48*time.Hour)
	must(db.Revoke(ctx, lease, now.Add(time.Hour)))
	got, first, last, err = db.Since(ctx, 1, 100)
	must(err)
	if first != 4 || last != 4 || len(got) != 1 || got[0].Seq != 4 {
		t.Errorf("after compaction: %d entries, first %d, last %d", len(got), first, last)
	}
}
