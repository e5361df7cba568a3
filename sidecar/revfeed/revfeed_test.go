package revfeed

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func openLog(t *testing.T) *boltstore.DB {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), boltstore.FileName), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestFeedAuth(t *testing.T) {
	srv := httptest.NewServer(&Handler{Log: openLog(t), Secret: "s3cret"})
	defer srv.Close()
	for name, hdr := range map[string][]string{
		"none": nil, "wrong": {"Bearer nope"}, "basic": {"Basic s3cret"}, "twice": {"Bearer s3cret", "Bearer s3cret"}, "prefix": {"Bearer s3cre"},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		for _, h := range hdr {
			req.Header.Add("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: %d %q", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// A Handler without a secret refuses everyone.
	open := httptest.NewServer(&Handler{Log: openLog(t)})
	defer open.Close()
	f := &Follower{URL: open.URL, Secret: ""}
	if err := f.Poll(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("no secret configured: %v", err)
	}
}

// TestFollow: a follower loads a snapshot, then gets each new entry by the
// long poll within a second, applies resets, resumes from its sequence
// number after the issuer comes back, and refuses to answer (ErrStale)
// once cut off longer than its bound.
func TestFollow(t *testing.T) {
	ctx := context.Background()
	log := openLog(t)
	lease := store.Revocation{Kind: store.KindLease, Value: "L1"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(log.Revoke(ctx, lease, time.Now().Add(time.Hour)))
	h := &Handler{Log: log, Secret: "s3cret"}
	srv := httptest.NewServer(h)
	defer srv.Close()
	clk := &clock{t: time.Now()}
	f := &Follower{URL: srv.URL, Secret: "s3cret", MaxStale: 3 * time.Second, Now: clk.now}
	if _, err := f.AnyRevoked(ctx, lease); !errors.Is(err, ErrStale) {
		t.Fatalf("before the first contact: %v, want ErrStale", err)
	}
	must(f.Poll(ctx)) // the snapshot
	if ok, err := f.AnyRevoked(ctx, lease); !ok || err != nil {
		t.Fatalf("snapshot not applied: %v %v", ok, err)
	}
	// A long poll waiting for news gets a new entry at once.
	alice := store.Revocation{Kind: store.KindSub, Value: "alice"}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f.Poll(ctx) }()
	time.Sleep(50 * time.Millisecond) // let the poll start waiting
	must(log.Revoke(ctx, alice, store.WatermarkUntil(time.Now().Add(time.Hour))))
	h.Notify()
	must(<-done)
	if took := time.Since(start); took > time.Second {
		t.Errorf("the long poll took %v to deliver a new entry", took)
	}
	a := alice
	a.IssuedAt = time.Now()
	if ok, _ := f.AnyRevoked(ctx, a); !ok {
		t.Fatal("new entry not applied")
	}
	// A reset (lifting a block) lowers it.
	must(log.Reset(ctx, alice, store.WatermarkUntil(time.Now().Add(-time.Minute))))
	must(f.Poll(ctx))
	if ok, _ := f.AnyRevoked(ctx, a); ok {
		t.Fatal("reset not applied")
	}
	// Cut off longer than the bound: no answer.
	clk.add(4 * time.Second)
	if _, err := f.AnyRevoked(ctx, lease); !errors.Is(err, ErrStale) {
		t.Fatalf("after the bound: %v, want ErrStale", err)
	}
	if err := f.Ready(); err == nil || !strings.Contains(err.Error(), "last contact") {
		t.Errorf("Ready = %v", err)
	}
	// The issuer comes back with what was revoked meanwhile; the follower
	// resumes after its last sequence number, not from a snapshot.
	seq := f.Last()
	lease2 := store.Revocation{Kind: store.KindLease, Value: "L2"}
	must(log.Revoke(ctx, lease2, time.Now().Add(time.Hour)))
	b, err := h.batch(ctx, seq)
	must(err)
	if b.Snapshot || len(b.Entries) != 1 || b.Entries[0].Seq != seq+1 {
		t.Fatalf("resume after %d: %+v", seq, b)
	}
	must(f.Poll(ctx))
	if ok, err := f.AnyRevoked(ctx, lease2); !ok || err != nil {
		t.Fatalf("after the outage: %v %v", ok, err)
	}
}
