package authserver

import (
	"context"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
)

// countingKV wraps the real (bbolt) KV and counts the records ForEach
// visits, to tell a scan from an indexed lookup.
type countingKV struct {
	store.KV
	visits atomic.Int64
}

type countingTx struct {
	store.Tx
	kv *countingKV
}

func (c *countingKV) Update(ctx context.Context, fn func(store.Tx) error) error {
	return c.KV.Update(ctx, func(tx store.Tx) error { return fn(countingTx{tx, c}) })
}

func (c *countingKV) View(ctx context.Context, fn func(store.Tx) error) error {
	return c.KV.View(ctx, func(tx store.Tx) error { return fn(countingTx{tx, c}) })
}

func (t countingTx) ForEach(bucket string, fn func(string, []byte) error) error {
	return t.Tx.ForEach(bucket, func(k string, v []byte) error {
		t.kv.visits.Add(1)
		return fn(k, v)
	})
}

// bucketLen counts a bucket's records.
func (h *harness) bucketLen(bucket string) int {
	h.t.Helper()
	n := 0
	err := h.db.View(context.Background(), func(tx store.Tx) error {
		return tx.ForEach(bucket, func(string, []byte) error { n++; return nil })
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// /device_authorization is limited per source: the request past the
// budget gets 429 with Retry-After, another source is unaffected.
func TestDeviceAuthorizationPerSource(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.DeviceAuthorizationPerSource = ratelimit.Limit{Rate: 1.0 / 60, Burst: 3}
	})
	a := h.from("127.0.0.2")
	for i := range 3 {
		if r := a.post("/device_authorization", url.Values{"client_id": {"demo-app"}}, nil); r.Status != 200 {
			t.Fatalf("request %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	wantRetryAfter(t, a.post("/device_authorization", url.Values{"client_id": {"demo-app"}}, nil))
	if r := h.from("127.0.0.3").post("/device_authorization", url.Values{"client_id": {"demo-app"}}, nil); r.Status != 200 {
		t.Errorf("another source: %d %s", r.Status, r.Raw)
	}
	h.clk.Add(time.Minute)
	if r := a.post("/device_authorization", url.Values{"client_id": {"demo-app"}}, nil); r.Status != 200 {
		t.Errorf("after a minute: %d %s", r.Status, r.Raw)
	}
}

// The default per-source limit holds over real HTTP (no option set).
func TestDeviceAuthorizationDefaultLimit(t *testing.T) {
	h := newHarness(t, nil)
	a := h.from("127.0.0.2")
	var last result
	for range 31 {
		last = a.post("/device_authorization", url.Values{"client_id": {"demo-app"}}, nil)
	}
	wantRetryAfter(t, last)
}

// /device_authorization is limited per client across sources.
func TestDeviceAuthorizationPerClient(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.DeviceAuthorizationPerClient = ratelimit.Limit{Rate: 1.0 / 60, Burst: 2}
	})
	for i := range 2 {
		if r := h.from("127.0.0."+strconv.Itoa(i+2)).post("/device_authorization", url.Values{"client_id": {"demo-app"}}, nil); r.Status != 200 {
			t.Fatalf("request %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	wantRetryAfter(t, h.from("127.0.0.9").post("/device_authorization", url.Values{"client_id": {"demo-app"}}, nil))
	if r := h.from("127.0.0.9").post("/device_authorization", url.Values{"client_id": {"other-app"}}, nil); r.Status != 200 {
		t.Errorf("another client: %d %s", r.Status, r.Raw)
	}
}

// Pending codes are capped: past the cap the answer is 503
// temporarily_unavailable with Retry-After; once codes expire (and the
// sweep runs) new ones are issued again.
func TestPendingDeviceCodesCapped(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxPendingDeviceCodes = 3 })
	for i := range 3 {
		h.from("127.0.0."+strconv.Itoa(i+2)).authorize("demo-app", nil)
	}
	r := h.from("127.0.0.9").post("/device_authorization", url.Values{"client_id": {"demo-app"}}, nil)
	wantErr(t, r, 503, CodeUnavailable)
	if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After = %q", r.Header.Get("Retry-After"))
	}
	h.clk.Add(10 * time.Minute)
	if _, err := h.s.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.from("127.0.0.9").authorize("demo-app", nil)
}

// A device authorization does not scan the stored codes (it used to sweep
// every record inside its write transaction); the background sweep finds
// expired codes through an expiry index and deletes them in bounded
// batches.
func TestDeviceCodesSweptByIndex(t *testing.T) {
	var kv *countingKV
	h := newHarness(t, func(o *Options) {
		kv = &countingKV{KV: o.DB}
		o.DB = kv
		o.DeviceAuthorizationPerSource = ratelimit.Limit{Rate: 1000, Burst: 1000}
	})
	ctx := context.Background()
	for range 50 {
		h.authorize("demo-app", nil)
	}
	h.clk.Add(30 * time.Minute)
	kv.visits.Store(0)
	h.authorize("demo-app", nil)
	if n := kv.visits.Load(); n != 0 {
		t.Errorf("a device authorization visited %d stored records, want 0", n)
	}
	if n := h.bucketLen(bucketDevice); n != 51 {
		t.Fatalf("device records = %d, want 51", n)
	}
	// Expired, but a late poll still gets expired_token for a while.
	if _, err := h.s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := h.bucketLen(bucketDevice); n != 51 {
		t.Errorf("after a sweep inside the retention: %d records, want 51", n)
	}
	h.clk.Add(deviceRetention)
	kv.visits.Store(0)
	st, err := h.s.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.DeviceCodes != 50 {
		t.Errorf("swept %d device codes, want 50", st.DeviceCodes)
	}
	if n := h.bucketLen(bucketDevice); n != 1 {
		t.Errorf("device records after the sweep = %d, want the 1 live one", n)
	}
	if n := h.bucketLen(bucketUserCode); n != 1 {
		t.Errorf("user codes after the sweep = %d, want 1", n)
	}
	// The sweep walked the index, not the live record.
	if n := kv.visits.Load(); n > 2*50+2 {
		t.Errorf("the sweep visited %d records for 50 dead ones", n)
	}
}

// The sweep loop runs on its ticks and stops with its context.
func TestSweepLoop(t *testing.T) {
	h := newHarness(t, nil)
	h.authorize("demo-app", nil)
	h.clk.Add(10*time.Minute + deviceRetention)
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.s.sweepLoop(ctx, tick); close(done) }()
	tick <- time.Time{}
	tick <- time.Time{} // the first sweep has finished when the loop takes the second tick
	if n := h.bucketLen(bucketDevice); n != 0 {
		t.Errorf("records after the loop swept = %d, want 0", n)
	}
	cancel()
	<-done
}

// dbRecords counts every record of the server's database.
func (h *harness) dbRecords() int {
	n := 0
	for _, b := range []string{bucketDevice, bucketUserCode, bucketRefresh, bucketFamily, bucketKeys,
		bucketDeviceLive, bucketDevicePurge, bucketFamilyExpiry, bucketRefreshExpiry, bucketMeta, bucketLineage} {
		n += h.bucketLen(b)
	}
	return n
}

// Under churn (a sign-in and two refreshes every two hours, for 80 hours
// of the injected clock, sweeping as the background loop does) the
// database stops growing once the first grants have expired: device
// codes, families, refresh tokens and the families' lineage entries are
// all deleted in time.
func TestDatabaseStopsGrowingUnderChurn(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	var sizes []int
	for range 40 {
		k := newKey(t)
		rt := h.tokens(k).Str("refresh_token")
		for range 2 {
			h.clk.Add(time.Minute)
			r := h.refresh("demo-app", rt, k)
			if r.Status != 200 {
				t.Fatalf("refresh: %d %s", r.Status, r.Raw)
			}
			rt = r.Str("refresh_token")
		}
		h.clk.Add(2 * time.Hour)
		if _, err := h.s.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, h.dbRecords())
	}
	// A grant lives 24 h plus an hour of retention: after ~13 rounds
	// what is added is what is deleted.
	mid, last := sizes[19], sizes[len(sizes)-1]
	if last > mid {
		t.Errorf("records after 40 rounds = %d, after 20 = %d: still growing (%v)", last, mid, sizes)
	}
	if perRound := sizes[0]; last > 15*perRound {
		t.Errorf("records = %d, want about 13 rounds' worth (%d each)", last, perRound)
	}
}

// A database written before the expiry indexes existed is indexed once at
// start, so its old records are swept too.
func TestOldDatabaseIndexedAtStart(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	now := h.clk.Now()
	err := h.db.Update(ctx, func(tx store.Tx) error {
		old := deviceGrant{ClientID: "demo-app", UserCode: "BBBBBBBB", Status: statusPending, CreatedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-47 * time.Hour)}
		live := deviceGrant{ClientID: "demo-app", UserCode: "CCCCCCCC", Status: statusPending, CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
		fam := family{ClientID: "demo-app", Subject: "alice", CreatedAt: now.Add(-72 * time.Hour), ExpiresAt: now.Add(-48 * time.Hour)}
		for _, p := range []struct {
			b, k string
			v    any
		}{
			{bucketDevice, "old", &old}, {bucketDevice, "live", &live}, {bucketFamily, "fam", &fam},
			{bucketRefresh, "rt1", &refreshToken{FamilyID: "fam"}}, {bucketRefresh, "rt2", &refreshToken{FamilyID: "gone"}},
		} {
			if err := putJSON(tx, p.b, p.k, p.v); err != nil {
				return err
			}
		}
		if err := tx.Put(bucketUserCode, "BBBBBBBB", []byte("old")); err != nil {
			return err
		}
		for _, k := range []string{metaIndexVersion, metaGrantIndex, metaLiveCodes} {
			if err := tx.Delete(bucketMeta, k); err != nil {
				return err
			}
		}
		for _, b := range []string{bucketDeviceLive, bucketDevicePurge, bucketFamilyExpiry, bucketRefreshExpiry} {
			var keys []string
			_ = tx.ForEach(b, func(k string, _ []byte) error { keys = append(keys, k); return nil })
			for _, k := range keys {
				if err := tx.Delete(b, k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.restart()
	st, err := h.s.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.DeviceCodes != 1 || st.Families != 1 || st.RefreshTokens != 2 {
		t.Errorf("swept %+v, want the old device code, the family and both refresh tokens", st)
	}
	if n := h.bucketLen(bucketDevice); n != 1 {
		t.Errorf("device records = %d, want the live one", n)
	}
	if n := h.bucketLen(bucketUserCode); n != 0 {
		t.Errorf("user codes = %d, want 0", n)
	}
	// The live code counts against the cap.
	err = h.db.View(ctx, func(tx store.Tx) error {
		if n := liveCount(tx); n != 1 {
			t.Errorf("live count = %d, want 1", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
