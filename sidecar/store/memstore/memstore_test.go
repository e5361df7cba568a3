package memstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestReplay(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	r := &Replay{Now: c.now, Max: 3}
	until := c.t.Add(65 * time.Second)

	if err := r.Use(ctx, "k1", "a", until); err != nil {
		t.Fatal(err)
	}
	if err := r.Use(ctx, "k1", "a", until); !errors.Is(err, dpop.ErrReplay) {
		t.Fatalf("second use: %v", err)
	}
	if err := r.Use(ctx, "k2", "a", until); err != nil {
		t.Fatalf("same jti, other key: %v", err)
	}
	if err := r.Use(ctx, "k1", "b", c.t.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// Full of live entries: refuse, never evict.
	if err := r.Use(ctx, "k3", "x", until); !errors.Is(err, store.ErrFull) {
		t.Fatalf("full: %v", err)
	}
	if err := r.Use(ctx, "k1", "a", until); !errors.Is(err, dpop.ErrReplay) {
		t.Fatalf("live entry lost while full: %v", err)
	}
	// Once one entry expires, there is room again.
	c.t = c.t.Add(2 * time.Second)
	if err := r.Use(ctx, "k3", "x", until); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	// An entry is live until its own expiry, not until now + window.
	c.t = until.Add(-time.Nanosecond)
	if err := r.Use(ctx, "k1", "a", until); !errors.Is(err, dpop.ErrReplay) {
		t.Fatalf("just before expiry: %v", err)
	}
	c.t = until
	if err := r.Use(ctx, "k1", "a", until.Add(time.Minute)); err != nil {
		t.Fatalf("at expiry: %v", err)
	}
}

// TestReplayConcurrent: 50 concurrent copies of one proof, exactly one wins.
func TestReplayConcurrent(t *testing.T) {
	r := &Replay{}
	var ok atomic.Int32
	var wg sync.WaitGroup
	until := time.Now().Add(time.Minute)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.Use(context.Background(), "k", "j", until) == nil {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d of 50 copies accepted, want 1", ok.Load())
	}
}

// TestReplayFlood: more fresh proofs than capacity never evict a captured one.
func TestReplayFlood(t *testing.T) {
	ctx := context.Background()
	r := &Replay{Max: 1000}
	until := time.Now().Add(time.Minute)
	if err := r.Use(ctx, "victim", "j", until); err != nil {
		t.Fatal(err)
	}
	var full int
	for i := 0; i < 1001; i++ {
		if errors.Is(r.Use(ctx, "attacker", fmt.Sprint(i), until), store.ErrFull) {
			full++
		}
	}
	if full != 2 {
		t.Errorf("refusals = %d, want 2", full)
	}
	if err := r.Use(ctx, "victim", "j", until); !errors.Is(err, dpop.ErrReplay) {
		t.Errorf("captured proof after flood: %v", err)
	}
}

func TestRevocations(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	v := &Revocations{Now: c.now}
	lease := store.Revocation{Kind: store.KindLease, Value: "L1"}
	sub := store.Revocation{Kind: store.KindSub, Value: "alice"}
	if got, _ := v.AnyRevoked(ctx, lease, sub); got {
		t.Fatal("revoked before Revoke")
	}
	_ = v.Revoke(ctx, lease, c.t.Add(time.Minute))
	_ = v.Revoke(ctx, lease, c.t.Add(time.Second)) // never shortens
	if got, _ := v.AnyRevoked(ctx, sub, lease); !got {
		t.Fatal("lease not revoked")
	}
	if got, _ := v.AnyRevoked(ctx, store.Revocation{Kind: store.KindJTI, Value: "L1"}); got {
		t.Fatal("kinds are separate namespaces")
	}
	c.t = c.t.Add(30 * time.Second)
	if got, _ := v.AnyRevoked(ctx, lease); !got {
		t.Fatal("shortened by a later, earlier expiry")
	}
	c.t = c.t.Add(31 * time.Second)
	if got, _ := v.AnyRevoked(ctx, lease); got {
		t.Fatal("still revoked after expiry")
	}
}

// BenchmarkReplayUse measures one fresh insert; run with -benchmem to see
// bytes per entry.
func BenchmarkReplayUse(b *testing.B) {
	r := &Replay{Max: 1 << 30}
	until := time.Now().Add(time.Hour)
	jkt := "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := r.Use(context.Background(), jkt, fmt.Sprintf("%022d", i), until); err != nil {
			b.Fatal(err)
		}
	}
}
