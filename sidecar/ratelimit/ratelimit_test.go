package ratelimit

import (
	"context"
	"testing"
	"time"
)

func TestMemoryAllow(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	type step struct {
		at        time.Duration
		key       string
		allowed   bool
		remaining int
	}
	tests := []struct {
		name  string
		limit Limit
		steps []step
	}{
		{"burst then refuse", Limit{Rate: 1, Burst: 2}, []step{
			{0, "a", true, 1}, {0, "a", true, 0}, {0, "a", false, 0},
		}},
		{"refill after a second", Limit{Rate: 1, Burst: 2}, []step{
			{0, "a", true, 1}, {0, "a", true, 0}, {0, "a", false, 0}, {time.Second, "a", true, 0},
		}},
		{"keys are independent", Limit{Rate: 1, Burst: 1}, []step{
			{0, "a", true, 0}, {0, "a", false, 0}, {0, "b", true, 0},
		}},
		{"burst defaults to ceil(rate)", Limit{Rate: 2.5}, []step{
			{0, "a", true, 2}, {0, "a", true, 1}, {0, "a", true, 0}, {0, "a", false, 0},
		}},
		{"refill capped at burst", Limit{Rate: 10, Burst: 2}, []step{
			{0, "a", true, 1}, {time.Hour, "a", true, 1},
		}},
		{"zero limit never refuses", Limit{}, []step{
			{0, "a", true, 0}, {0, "a", true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Memory{}
			for i, s := range tt.steps {
				res, err := m.Allow(context.Background(), s.key, tt.limit, t0.Add(s.at))
				if err != nil {
					t.Fatal(err)
				}
				if res.Allowed != s.allowed || res.Remaining != s.remaining {
					t.Errorf("step %d: Allowed, Remaining = %v, %d, want %v, %d", i, res.Allowed, res.Remaining, s.allowed, s.remaining)
				}
				if !res.Allowed && res.RetryAfter <= 0 {
					t.Errorf("step %d: RetryAfter = %v, want > 0", i, res.RetryAfter)
				}
			}
		})
	}
}

func TestMemoryRetryAfter(t *testing.T) {
	m := &Memory{}
	t0 := time.Unix(1_700_000_000, 0)
	l := Limit{Rate: 0.5, Burst: 1}
	m.Allow(context.Background(), "k", l, t0)
	res, _ := m.Allow(context.Background(), "k", l, t0)
	if res.Allowed || res.RetryAfter != 2*time.Second {
		t.Errorf("Allowed, RetryAfter = %v, %v, want false, 2s", res.Allowed, res.RetryAfter)
	}
	if res.Limit != 1 {
		t.Errorf("Limit = %d, want 1", res.Limit)
	}
}

func TestMemoryBounded(t *testing.T) {
	m := &Memory{MaxKeys: 2}
	t0 := time.Unix(1_700_000_000, 0)
	l := Limit{Rate: 1, Burst: 1}
	ctx := context.Background()
	m.Allow(ctx, "a", l, t0)
	m.Allow(ctx, "b", l, t0)
	if _, err := m.Allow(ctx, "c", l, t0); err != ErrFull {
		t.Fatalf("third key while both buckets are drained: err = %v, want ErrFull", err)
	}
	// One second later both have refilled and can be dropped.
	if res, err := m.Allow(ctx, "c", l, t0.Add(time.Second)); err != nil || !res.Allowed {
		t.Fatalf("after refill: %v %v", res, err)
	}
}

func TestLimitValidate(t *testing.T) {
	for _, l := range []Limit{{Rate: -1}, {Burst: 3}, {Rate: 1, Burst: -1}} {
		if l.Validate() == nil {
			t.Errorf("Validate(%+v) = nil, want error", l)
		}
	}
	if err := (Limit{Rate: 5, Burst: 10}).Validate(); err != nil {
		t.Error(err)
	}
}
