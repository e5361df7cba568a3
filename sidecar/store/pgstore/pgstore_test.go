package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/pgstore/pgtest"
	"github.com/keyless-dev/keyless/sidecar/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openURL opens a store on url, closed when the test ends.
func openURL(t testing.TB, url string, now func() time.Time) *DB {
	t.Helper()
	db, err := Open(context.Background(), url, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openFresh opens a store on a fresh database of the shared server.
func openFresh(t testing.TB, now func() time.Time) *DB {
	t.Helper()
	return openURL(t, pgtest.NewDB(t), now)
}

func TestReplayConformance(t *testing.T) {
	storetest.TestReplay(t, func(t *testing.T) store.Replay { return openFresh(t, nil) })
}

func TestLimiterConformance(t *testing.T) {
	storetest.TestLimiter(t, func(t *testing.T) ratelimit.Limiter { return openFresh(t, nil) })
}

func TestRevocationsConformance(t *testing.T) {
	storetest.TestRevocations(t, func(t *testing.T) store.Revocations { return openFresh(t, nil) })
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestKV: the KV semantics the issuer relies on, as the embedded store
// gives them: committed writes survive a reopen, a failed transaction
// writes nothing, View refuses writes, ForEach walks in bytewise key
// order, keys are arbitrary bytes.
func TestKV(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	db := openURL(t, url, nil)
	must(t, db.Update(ctx, func(tx store.Tx) error {
		for _, k := range []string{"b", "a\x00z", "a", "\xff", "A"} {
			if err := tx.Put("bk", k, []byte("v"+k)); err != nil {
				return err
			}
		}
		return tx.Put("empty", "k", nil)
	}))
	boom := errors.New("boom")
	if err := db.Update(ctx, func(tx store.Tx) error {
		_ = tx.Put("bk", "half", []byte("x"))
		_ = tx.Delete("bk", "a")
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	db.Close()
	db = openURL(t, url, nil)
	must(t, db.View(ctx, func(tx store.Tx) error {
		var keys []string
		must(t, tx.ForEach("bk", func(k string, v []byte) error {
			if string(v) != "v"+k {
				t.Errorf("%q = %q", k, v)
			}
			keys = append(keys, k)
			return nil
		}))
		if want := []string{"A", "a", "a\x00z", "b", "\xff"}; fmt.Sprint(keys) != fmt.Sprint(want) {
			t.Errorf("ForEach order = %q, want %q", keys, want)
		}
		if v := tx.Get("empty", "k"); v == nil || len(v) != 0 {
			t.Errorf("empty value = %v, want present and empty", v)
		}
		if v := tx.Get("bk", "half"); v != nil {
			t.Errorf("write of a failed transaction = %q", v)
		}
		if v := tx.Get("nobucket", "k"); v != nil {
			t.Errorf("missing bucket = %q", v)
		}
		if err := tx.Put("bk", "x", []byte("y")); err == nil {
			t.Error("Put inside View succeeded")
		}
		if err := tx.Delete("bk", "a"); err == nil {
			t.Error("Delete inside View succeeded")
		}
		return nil
	}))
	must(t, db.Update(ctx, func(tx store.Tx) error { return tx.Delete("bk", "never-there") }))
}

// TestUpdateOnceAcrossReplicas: two stores (two replicas) on one
// database, 50 concurrent read-modify-writes of one record (a device code
// being redeemed): exactly one sees it unredeemed and wins.
func TestUpdateOnceAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	a, b := openURL(t, url, nil), openURL(t, url, nil)
	must(t, a.Update(ctx, func(tx store.Tx) error { return tx.Put("device", "code", []byte("pending")) }))
	errRedeemed := errors.New("already redeemed")
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		db := a
		if i%2 == 1 {
			db = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			won := false
			err := db.Update(ctx, func(tx store.Tx) error {
				won = false
				if string(tx.Get("device", "code")) != "pending" {
					return errRedeemed
				}
				won = true
				return tx.Put("device", "code", []byte("redeemed by "+strconv.Itoa(i)))
			})
			if err != nil && !errors.Is(err, errRedeemed) {
				t.Errorf("Update: %v", err)
			}
			if err == nil && won {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d redemptions succeeded, want exactly 1", n)
	}
}

// TestCounterAcrossReplicas: increments from two replicas are never lost
// (a shared budget or quota counts every use).
func TestCounterAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	dbs := []*DB{openURL(t, url, nil), openURL(t, url, nil)}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			must(t, dbs[i%2].Update(ctx, func(tx store.Tx) error {
				n, _ := strconv.Atoi(string(tx.Get("meta", "count")))
				return tx.Put("meta", "count", []byte(strconv.Itoa(n+1)))
			}))
		}()
	}
	wg.Wait()
	must(t, dbs[0].View(ctx, func(tx store.Tx) error {
		if got := string(tx.Get("meta", "count")); got != "40" {
			t.Errorf("count = %s, want 40", got)
		}
		return nil
	}))
}

// TestLogOrdered mirrors the embedded store's: every change is one entry,
// numbered in order, durable across a reopen; a revocation that changes
// nothing adds none; a reset is an entry of its own; compaction (the
// sweep) keeps numbers and tells a follower too far behind to load a
// snapshot.
func TestLogOrdered(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	url := pgtest.NewDB(t)
	db := openURL(t, url, clock)
	lease := store.Revocation{Kind: store.KindLease, Value: "L1"}
	alice := store.Revocation{Kind: store.KindSub, Value: "alice"}
	must(t, db.Revoke(ctx, lease, now.Add(time.Hour)))
	must(t, db.Revoke(ctx, lease, now.Add(time.Minute)))     // earlier: no entry
	must(t, db.Revoke(ctx, lease, now.Add(-time.Minute)))    // over already: no entry
	must(t, db.Revoke(ctx, alice, now.Add(2*time.Hour)))     // a block
	must(t, db.Reset(ctx, alice, store.WatermarkUntil(now))) // lifted: a watermark
	db.Close()
	db = openURL(t, url, clock)
	got, first, last, err := db.Since(ctx, 0, 100)
	must(t, err)
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
	snap, at, err := db.Snapshot(ctx)
	must(t, err)
	if at != 3 || len(snap) != 2 {
		t.Errorf("Snapshot = %d entries at %d", len(snap), at)
	}
	if exp, err := db.Expiry(ctx, lease); err != nil || !exp.Equal(now.Add(time.Hour)) {
		t.Errorf("Expiry = %v, %v", exp, err)
	}
	mu.Lock()
	now = now.Add(store.WatermarkHorizon + 48*time.Hour)
	mu.Unlock()
	n, ran, err := db.Sweep(ctx)
	must(t, err)
	if !ran || n != 2+3 {
		t.Errorf("Sweep = %d rows, ran %v; want 5 (2 revocations, 3 log entries)", n, ran)
	}
	must(t, db.Revoke(ctx, lease, clock().Add(time.Hour)))
	got, first, last, err = db.Since(ctx, 1, 100)
	must(t, err)
	if first != 4 || last != 4 || len(got) != 1 || got[0].Seq != 4 {
		t.Errorf("after compaction: %d entries, first %d, last %d", len(got), first, last)
	}
}

// TestLogOneOrderAcrossReplicas: concurrent revocations through two
// replicas get sequence numbers 1..n with no gap and no reuse, and a
// follower reading while they are written never sees n before n-1.
func TestLogOneOrderAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	dbs := []*DB{openURL(t, url, nil), openURL(t, url, nil)}
	const n = 60
	stop := make(chan struct{})
	followerDone := make(chan error)
	go func() {
		// A follower polls Since: whatever it has read is a prefix.
		var seen uint64
		for {
			es, _, _, err := dbs[0].Since(ctx, seen, 1000)
			if err != nil {
				followerDone <- err
				return
			}
			for _, e := range es {
				if e.Seq != seen+1 {
					followerDone <- fmt.Errorf("follower at %d read %d: a hole", seen, e.Seq)
					return
				}
				seen = e.Seq
			}
			select {
			case <-stop:
				followerDone <- nil
				return
			default:
			}
		}
	}()
	var wg sync.WaitGroup
	until := time.Now().Add(time.Hour)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			must(t, dbs[i%2].Revoke(ctx, store.Revocation{Kind: store.KindJTI, Value: "j" + strconv.Itoa(i)}, until))
		}()
	}
	wg.Wait()
	close(stop)
	must(t, <-followerDone)
	es, first, last, err := dbs[1].Since(ctx, 0, 1000)
	must(t, err)
	if first != 1 || last != n || len(es) != n {
		t.Fatalf("log = %d entries, first %d, last %d; want %d, 1, %d", len(es), first, last, n, n)
	}
	seen := map[string]bool{}
	for i, e := range es {
		if e.Seq != uint64(i+1) || seen[e.Revocation.Value] {
			t.Fatalf("entry %d = %+v", i, e)
		}
		seen[e.Revocation.Value] = true
	}
}

// TestSchemaTooNew: a database migrated by a newer keyless is refused
// with ErrSchemaTooNew, and concurrent first starts migrate once.
func TestSchemaTooNew(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); openURL(t, url, nil) }()
	}
	wg.Wait()
	newer := append(append([]string(nil), migrations...), `CREATE TABLE keyless_future (x int)`)
	db, err := open(ctx, url, Options{}, newer)
	must(t, err)
	db.Close()
	if _, err := Open(ctx, url, Options{}); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema = %v, want ErrSchemaTooNew", err)
	}
}

// TestSweepOneAtATime: while one replica holds the sweep lock, another's
// Exclusive does not run.
func TestSweepOneAtATime(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	a, b := openURL(t, url, nil), openURL(t, url, nil)
	ran, err := a.Exclusive(ctx, 42, func(ctx context.Context) error {
		ran, err := b.Exclusive(ctx, 42, func(context.Context) error { return errors.New("ran twice") })
		if ran || err != nil {
			return fmt.Errorf("second Exclusive ran %v, %v", ran, err)
		}
		return nil
	})
	if !ran || err != nil {
		t.Fatalf("Exclusive = %v, %v", ran, err)
	}
	// Released: the other one runs now.
	if ran, err := b.Exclusive(ctx, 42, func(context.Context) error { return nil }); !ran || err != nil {
		t.Fatalf("Exclusive after release = %v, %v", ran, err)
	}
}

// TestNotify: an append to the log is announced on ChannelRevocations
// with its sequence number, to another replica's listener.
func TestNotify(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := pgtest.NewDB(t)
	a, b := openURL(t, url, nil), openURL(t, url, nil)
	conn, err := b.Pool().Acquire(ctx)
	must(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, "LISTEN "+ChannelRevocations)
	must(t, err)
	must(t, a.Revoke(ctx, store.Revocation{Kind: store.KindLease, Value: "L"}, time.Now().Add(time.Hour)))
	n, err := conn.Conn().WaitForNotification(ctx)
	must(t, err)
	if n.Channel != ChannelRevocations || n.Payload != "1" {
		t.Fatalf("notification = %s %q", n.Channel, n.Payload)
	}
}

// TestOnRevocation: the wake-up of the revocation feed runs after a
// committed change, not for a revocation that changes nothing, and when
// another replica's change is notified.
func TestOnRevocation(t *testing.T) {
	ctx := context.Background()
	db := openFresh(t, nil)
	var n atomic.Int32
	db.OnRevocation(func() { n.Add(1) })
	r := store.Revocation{Kind: store.KindLease, Value: "L"}
	until := time.Now().Add(time.Hour)
	must(t, db.Revoke(ctx, r, until))
	must(t, db.Revoke(ctx, r, until.Add(-time.Minute))) // earlier: no change
	if got := n.Load(); got != 1 {
		t.Fatalf("woken %d times after one change, want 1", got)
	}
	db.RevocationNotified()
	if got := n.Load(); got != 2 {
		t.Fatalf("woken %d times after a notification, want 2", got)
	}
}

// TestForEachPages: a bucket larger than one page is walked whole and in
// order, fn may use the transaction meanwhile, and an error from fn stops
// the walk.
func TestForEachPages(t *testing.T) {
	ctx := context.Background()
	db := openFresh(t, nil)
	const n = 2*forEachPage + 7
	must(t, db.Update(ctx, func(tx store.Tx) error {
		for i := range n {
			if err := tx.Put("big", fmt.Sprintf("k%05d", i), []byte(strconv.Itoa(i))); err != nil {
				return err
			}
		}
		return tx.Put("other", "x", []byte("y"))
	}))
	stop := errors.New("stop")
	must(t, db.Update(ctx, func(tx store.Tx) error {
		i := 0
		err := tx.ForEach("big", func(k string, v []byte) error {
			if want := fmt.Sprintf("k%05d", i); k != want || string(v) != strconv.Itoa(i) {
				t.Fatalf("key %d = %q %q, want %q", i, k, v, want)
			}
			if string(tx.Get("other", "x")) != "y" {
				t.Fatal("Get inside ForEach failed")
			}
			i++
			return nil
		})
		if err != nil || i != n {
			t.Fatalf("ForEach walked %d of %d: %v", i, n, err)
		}
		seen := 0
		if err := tx.ForEach("big", func(string, []byte) error {
			if seen++; seen == forEachPage+1 {
				return stop
			}
			return nil
		}); !errors.Is(err, stop) || seen != forEachPage+1 {
			t.Fatalf("early stop: %v after %d", err, seen)
		}
		return nil
	}))
}

// TestMigrateKeepsData: a database at an older schema version is brought
// to the current one at Open, its data kept.
func TestMigrateKeepsData(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	old, err := open(ctx, url, Options{}, migrations[:1])
	must(t, err)
	must(t, old.Update(ctx, func(tx store.Tx) error { return tx.Put("b", "k", []byte("v1 data")) }))
	must(t, old.Revoke(ctx, store.Revocation{Kind: store.KindLease, Value: "L"}, time.Now().Add(time.Hour)))
	old.Close()
	db := openURL(t, url, nil)
	var v int
	must(t, db.Pool().QueryRow(ctx, `SELECT version FROM keyless_schema`).Scan(&v))
	if v != SchemaVersion {
		t.Fatalf("schema version %d after Open, want %d", v, SchemaVersion)
	}
	must(t, db.View(ctx, func(tx store.Tx) error {
		if got := string(tx.Get("b", "k")); got != "v1 data" {
			t.Errorf("k = %q after migrating", got)
		}
		return nil
	}))
	if ok, err := db.AnyRevoked(ctx, store.Revocation{Kind: store.KindLease, Value: "L"}); err != nil || !ok {
		t.Errorf("revocation after migrating: %v %v", ok, err)
	}
	must(t, db.Use(ctx, "jkt", "jti", time.Now().Add(time.Minute))) // the new table works
}
