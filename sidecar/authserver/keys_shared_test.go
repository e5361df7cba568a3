package authserver

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

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
	db, err := boltstore.Open(filepath.Join(t.TempDir(), boltstore.FileName), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	newServer := func() *Server {
		cfg := testConfig(t)
		cfg.Issuer.URL = "http://127.0.0.1:1"
		s, err := New(ctx, Options{Config: cfg, DB: db, Revocations: db, Now: clk.Now, AdminToken: "admin-secret-token"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
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
