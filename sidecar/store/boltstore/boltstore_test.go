package boltstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

func TestKVPersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "d", FileName)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx store.Tx) error { return tx.Put("b", "k", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	// A failed transaction writes nothing.
	boom := errors.New("boom")
	if err := db.Update(ctx, func(tx store.Tx) error {
		_ = tx.Put("b", "k2", []byte("half"))
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Update err = %v", err)
	}
	// A second Open of a held file fails fast.
	if _, err := Open(path, Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open err = %v, want ErrLocked", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(ctx, func(tx store.Tx) error {
		if got := string(tx.Get("b", "k")); got != "v" {
			t.Errorf("k = %q after reopen", got)
		}
		if got := tx.Get("b", "k2"); got != nil {
			t.Errorf("k2 = %q, want nothing from the failed transaction", got)
		}
		if got := tx.Get("nobucket", "k"); got != nil {
			t.Errorf("missing bucket = %q", got)
		}
		if err := tx.Put("b", "x", nil); err == nil {
			t.Error("Put inside View succeeded")
		}
		return nil
	})
}

func TestRevocations(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	path := filepath.Join(t.TempDir(), FileName)
	db, err := Open(path, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	fam := store.Revocation{Kind: store.KindFamily, Value: "f1"}
	jti := store.Revocation{Kind: store.KindJTI, Value: "j1"}
	if err := db.Revoke(ctx, fam, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.Revoke(ctx, fam, now.Add(time.Minute)); err != nil { // does not shorten
		t.Fatal(err)
	}
	if err := db.Revoke(ctx, jti, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(path, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		at   time.Duration
		rs   []store.Revocation
		want bool
	}{
		{0, []store.Revocation{fam}, true},
		{0, []store.Revocation{{Kind: store.KindFamily, Value: "other"}, jti}, true},
		{0, []store.Revocation{{Kind: store.KindJTI, Value: "f1"}}, false}, // kinds are separate
		{2 * time.Minute, []store.Revocation{jti}, false},
		{2 * time.Minute, []store.Revocation{fam}, true},
		{2 * time.Hour, []store.Revocation{fam}, false},
	} {
		now = time.Unix(1_800_000_000, 0).Add(tc.at)
		got, err := db.AnyRevoked(ctx, tc.rs...)
		if err != nil || got != tc.want {
			t.Errorf("at +%v AnyRevoked(%v) = %v, %v; want %v", tc.at, tc.rs, got, err, tc.want)
		}
	}
}

func TestListRevocations(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	db, err := Open(filepath.Join(t.TempDir(), FileName), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	live := store.Revocation{Kind: store.KindLease, Value: "L\x00odd"}
	gone := store.Revocation{Kind: store.KindSub, Value: "bob"}
	if err := db.Revoke(ctx, live, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.Revoke(ctx, gone, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	got, err := db.ListRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Revocation != live || !got[0].Until.Equal(time.Unix(1_800_000_000, 0).Add(time.Hour)) {
		t.Errorf("ListRevocations = %+v", got)
	}
}
