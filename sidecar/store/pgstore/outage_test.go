package pgstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/pgstore/pgtest"
)

// TestOutage: with the database down every call fails (an error, never a
// result built on a read that did not happen: a callback's own refusal
// after a failed Get is replaced by the database error), and the same
// store works again once the database is back, without reopening.
func TestOutage(t *testing.T) {
	srv := pgtest.Start(t) // its own server: this test stops it
	url := srv.NewDB(t)
	db, err := Open(context.Background(), url, Options{ConnectTimeout: time.Second})
	must(t, err)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	must(t, db.Update(ctx, func(tx store.Tx) error { return tx.Put("b", "k", []byte("v")) }))
	lease := store.Revocation{Kind: store.KindLease, Value: "L"}
	must(t, db.Revoke(ctx, lease, time.Now().Add(time.Hour)))

	srv.Kill()
	errUnknown := errors.New("unknown code")
	err = db.Update(ctx, func(tx store.Tx) error {
		if tx.Get("b", "k") == nil {
			return errUnknown // what a handler says of a missing record
		}
		return tx.Put("b", "k", []byte("w"))
	})
	if err == nil || errors.Is(err, errUnknown) {
		t.Fatalf("Update with the database down = %v, want the database's error", err)
	}
	if err := db.View(ctx, func(store.Tx) error { return nil }); err == nil {
		t.Fatal("View with the database down succeeded")
	}
	if revoked, err := db.AnyRevoked(ctx, lease); err == nil {
		t.Fatalf("AnyRevoked with the database down = %v, nil", revoked)
	}
	if err := db.Revoke(ctx, store.Revocation{Kind: store.KindLease, Value: "M"}, time.Now().Add(time.Hour)); err == nil {
		t.Fatal("Revoke with the database down succeeded")
	}
	if err := db.Ping(ctx); err == nil {
		t.Fatal("Ping with the database down succeeded")
	}

	must(t, srv.Restart())
	// Recovery: the pool reconnects; what was committed is there.
	must(t, db.View(ctx, func(tx store.Tx) error {
		if got := string(tx.Get("b", "k")); got != "v" {
			t.Errorf("k = %q after the outage, want v", got)
		}
		return nil
	}))
	if revoked, err := db.AnyRevoked(ctx, lease); err != nil || !revoked {
		t.Fatalf("AnyRevoked after the outage = %v, %v; want true", revoked, err)
	}
}
