package lease

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
)

// TestSharedQuota: two services (replicas) counting in one database
// enforce one quota together, per subject and per app; the next window is
// fresh, and SweepQuotas deletes ended windows.
func TestSharedQuota(t *testing.T) {
	ctx := context.Background()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), boltstore.FileName), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	replicas := []*Service{
		{quota: &quotaCounter{counts: map[string]int{}, kv: db}, now: clock},
		{quota: &quotaCounter{counts: map[string]int{}, kv: db}, now: clock},
	}
	lim := policy.Quota{PerSubjectPerHour: 3, PerAppPerHour: 5}
	take := func(i int, sub string) bool {
		t.Helper()
		_, ok, err := replicas[i%2].quota.takeCtx(ctx, "app", sub, lim, now)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for i := range 3 {
		if !take(i, "alice") {
			t.Fatalf("alice's lease %d refused", i+1)
		}
	}
	if take(3, "alice") || take(4, "alice") {
		t.Fatal("alice's 4th lease allowed: the per-subject quota is per replica")
	}
	if !take(0, "bob") || !take(1, "bob") {
		t.Fatal("bob refused within the app quota")
	}
	if take(0, "carol") {
		t.Fatal("6th lease of the app allowed: the per-app quota is per replica")
	}
	now = now.Add(time.Hour)
	if !take(1, "alice") {
		t.Fatal("refused in the next window")
	}
	n, err := replicas[0].SweepQuotas(ctx, 100)
	if err != nil || n != 3 {
		t.Fatalf("SweepQuotas = %d, %v; want the 3 counts of the ended window", n, err)
	}
	left := 0
	_ = db.View(ctx, func(tx store.Tx) error {
		return tx.ForEach(bucketQuotas, func(string, []byte) error { left++; return nil })
	})
	if left != 2 {
		t.Errorf("%d counts left, want the current window's 2", left)
	}
}
