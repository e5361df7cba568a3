package authserver

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

func kids(ks *token.KeySet) []string {
	var out []string
	for _, k := range ks.Keys() {
		out = append(out, k.KID)
	}
	return out
}

// TestKeysSharedDatabase: two servers on one database (replicas on a
// shared store) start with one key set; a rotation by each keeps the
// other's key (read-modify-write in one transaction, never a blind
// overwrite of the stored set), and ReloadKeys makes both publish the
// same set.
func TestKeysSharedDatabase(t *testing.T) {
	ctx := context.Background()
	clk := &clock{T: time.Unix(1_800_000_000, 0)}
	_, newServer := replicasOnOneDB(t, clk, false)
	a, b := newServer(), newServer()
	if ka, kb := kids(a.Keys()), kids(b.Keys()); !slices.Equal(ka, kb) || len(ka) != 1 {
		t.Fatalf("started with %v and %v, want one shared key", ka, kb)
	}
	kidA, err := a.RotateKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kidB, err := b.RotateKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := kids(b.Keys()); len(got) != 3 || got[0] != kidB || got[1] != kidA {
		t.Fatalf("b's keys after both rotated = %v, want [%s %s first]", got, kidB, kidA)
	}
	if err := a.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	ja, _ := a.Keys().JWKS()
	jb, _ := b.Keys().JWKS()
	if string(ja) != string(jb) {
		t.Fatalf("JWKS differ after reload:\n%s\n%s", ja, jb)
	}
}

// TestSharedBudgets: with SharedBudgets, two servers on one database
// charge one source's failures to one budget, whichever server saw them
// (the code limiter outside a transaction, the poll limiter inside one),
// the window's end frees it, and the sweep deletes ended windows.
func TestSharedBudgets(t *testing.T) {
	ctx := context.Background()
	clk := &clock{T: time.Unix(1_800_000_000, 0)}
	db, newServer := replicasOnOneDB(t, clk, true)
	a, b := newServer(), newServer()
	src := "192.0.2.1"
	for i := range 5 {
		s := []*Server{a, b}[i%2]
		if ok, _ := s.codeLimiter.allowCtx(ctx, src, clk.Now()); !ok {
			t.Fatalf("refused after %d failures", i)
		}
		s.codeLimiter.failCtx(ctx, src, clk.Now())
	}
	for i, s := range []*Server{a, b} {
		if ok, wait := s.codeLimiter.allowCtx(ctx, src, clk.Now()); ok || wait <= 0 {
			t.Errorf("server %d: allowed after 5 shared failures (wait %v)", i, wait)
		}
	}
	// The poll limiter counts in the caller's transaction.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for range pollFailures {
		must(db.Update(ctx, func(tx store.Tx) error { return a.pollLimiter.failIn(tx, src, clk.Now()) }))
	}
	must(db.View(ctx, func(tx store.Tx) error {
		if ok, _ := b.pollLimiter.allowIn(tx, src, clk.Now()); ok {
			t.Error("poll budget not shared")
		}
		return nil
	}))
	clk.Add(time.Hour)
	if ok, _ := b.codeLimiter.allowCtx(ctx, src, clk.Now()); !ok {
		t.Error("still refused after the window")
	}
	if _, err := a.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	must(db.View(ctx, func(tx store.Tx) error {
		return tx.ForEach(bucketBudgets, func(k string, _ []byte) error {
			t.Errorf("ended window kept after the sweep: %q", k)
			return nil
		})
	}))
}

// replicasOnOneDB is a bolt database and a constructor of servers on it
// (replicas sharing one store), with SharedBudgets as given.
func replicasOnOneDB(t *testing.T, clk *clock, sharedBudgets bool) (*boltstore.DB, func() *Server) {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), boltstore.FileName), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, func() *Server {
		cfg := testConfig(t)
		cfg.Issuer.URL = "http://127.0.0.1:1"
		s, err := New(context.Background(), Options{Config: cfg, DB: db, Revocations: db, Now: clk.Now, AdminToken: "admin-secret-token", SharedBudgets: sharedBudgets})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}
