package keyquota

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store/memstore"
)

func TestQuota(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	q := New(2, time.Minute, clock)
	for _, tt := range []struct {
		name  string
		key   string
		add   time.Duration // entry lifetime to add when allowed
		want  bool
		retry time.Duration
	}{
		{"first", "a", 10 * time.Second, true, 0},
		{"second", "a", 20 * time.Second, true, 0},
		{"third refused, until the oldest expires", "a", 0, false, 10 * time.Second},
		{"another key", "b", 10 * time.Second, true, 0},
	} {
		retry, ok := q.Check(tt.key)
		if ok != tt.want || retry != tt.retry {
			t.Errorf("%s: Check = %v, %v; want %v, %v", tt.name, retry, ok, tt.retry, tt.want)
		}
		if ok {
			q.Add(tt.key, now.Add(tt.add))
		}
	}
	now = now.Add(10 * time.Second)
	if _, ok := q.Check("a"); !ok {
		t.Error("after the oldest entry expired: still refused")
	}
	var nilQ *Quota
	if _, ok := nilQ.Check("x"); !ok {
		t.Error("a nil Quota refused")
	}
}

func TestReplay(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	r := Replay{Replay: &memstore.Replay{Now: clock}, Quota: New(1, time.Minute, clock)}
	ctx := context.Background()
	if err := r.Use(ctx, "k", "j1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.Use(ctx, "k", "j2", now.Add(time.Minute)); !errors.Is(err, ErrQuota) {
		t.Errorf("second entry: %v, want ErrQuota", err)
	}
	if err := r.Use(ctx, "other", "j2", now.Add(time.Minute)); err != nil {
		t.Errorf("another key: %v", err)
	}
}
