// Package ratelimit is a token-bucket rate limiter keyed by string (an app's
// client_id, a subject). [Limiter] is the interface the proxy uses; [Memory]
// keeps the buckets of one process, and a shared store can implement the
// same interface for several replicas.
package ratelimit

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"
)

// Limit is a token bucket: Rate tokens per second refill a bucket of Burst
// tokens; each request takes one. The zero Limit means no limit.
type Limit struct {
	// Rate in requests per second.
	Rate float64 `yaml:"rate"`
	// Burst is the bucket size; zero means max(1, ceil(Rate)).
	Burst int `yaml:"burst"`
}

// IsZero reports whether l imposes no limit.
func (l Limit) IsZero() bool { return l.Rate == 0 }

// Validate checks l.
func (l Limit) Validate() error {
	if l.Rate < 0 || math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) || l.Burst < 0 {
		return errors.New("ratelimit: rate and burst must be finite and not negative")
	}
	if l.Rate == 0 && l.Burst != 0 {
		return errors.New("ratelimit: burst without rate")
	}
	return nil
}

func (l Limit) burst() float64 {
	if l.Burst > 0 {
		return float64(l.Burst)
	}
	return math.Max(1, math.Ceil(l.Rate))
}

// Result is the outcome of one [Limiter.Allow].
type Result struct {
	Allowed bool
	// Limit is the bucket size (RateLimit-Limit).
	Limit int
	// Remaining tokens after this request (RateLimit-Remaining).
	Remaining int
	// Reset is when the bucket is full again (RateLimit-Reset).
	Reset time.Duration
	// RetryAfter is when the next request may pass; zero when Allowed.
	RetryAfter time.Duration
}

// ErrFull is returned when a bounded limiter cannot track another key.
// Callers fail closed (503).
var ErrFull = errors.New("ratelimit: too many keys")

// Limiter takes one token for key under l at now. An error means the limiter
// could not answer; callers refuse the request (503).
type Limiter interface {
	Allow(ctx context.Context, key string, l Limit, now time.Time) (Result, error)
}

// DefaultMaxKeys bounds [Memory].
const DefaultMaxKeys = 1 << 20

// Memory is an in-process [Limiter]. The zero value is ready to use.
type Memory struct {
	// MaxKeys bounds the buckets held; zero means DefaultMaxKeys. When
	// full, buckets that have refilled are dropped (they carry no state);
	// if none can go, Allow returns ErrFull.
	MaxKeys int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
	full   time.Time // when tokens reach burst if untouched
}

var _ Limiter = (*Memory)(nil)

// Allow implements Limiter.
func (m *Memory) Allow(_ context.Context, key string, l Limit, now time.Time) (Result, error) {
	if l.IsZero() {
		return Result{Allowed: true}, nil
	}
	burst := l.burst()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buckets == nil {
		m.buckets = make(map[string]*bucket)
	}
	b, ok := m.buckets[key]
	if !ok {
		max := m.MaxKeys
		if max <= 0 {
			max = DefaultMaxKeys
		}
		if len(m.buckets) >= max {
			for k, old := range m.buckets {
				if !old.full.After(now) {
					delete(m.buckets, k)
				}
			}
			if len(m.buckets) >= max {
				return Result{}, ErrFull
			}
		}
		b = &bucket{tokens: burst, last: now}
		m.buckets[key] = b
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = math.Min(burst, b.tokens+el.Seconds()*l.Rate)
		b.last = now
	}
	res := Result{Limit: int(burst)}
	if b.tokens >= 1 {
		b.tokens--
		res.Allowed = true
	} else {
		res.RetryAfter = secs((1 - b.tokens) / l.Rate)
	}
	res.Remaining = int(math.Floor(b.tokens))
	res.Reset = secs((burst - b.tokens) / l.Rate)
	b.full = now.Add(res.Reset)
	return res, nil
}

func secs(s float64) time.Duration {
	return time.Duration(math.Ceil(s * float64(time.Second)))
}
