package authserver

import (
	"sync"
	"time"
)

// failureLimiter counts failures (wrong user codes, wrong passwords,
// unknown device codes) in fixed windows, per client IP and globally. Once
// a key has used its budget every request from it is refused until the
// window ends, and once the global budget is spent every request is: a
// guesser spread over many IPs still gets only the global budget per
// window (docs/security.md#device-flow; RFC 8628 section 5.1).
//
// With the defaults (5 per IP, 5 globally per 10 minutes, see
// [Options.UserCodeFailures]) and device codes living 10 minutes, a
// guesser's chance per live code per window is at most 5/20^8 ≈ 2^-32.
type failureLimiter struct {
	perKey, global int
	window         time.Duration

	mu          sync.Mutex
	windowStart time.Time
	counts      map[string]int
	total       int
}

func newFailureLimiter(perKey, global int, window time.Duration) *failureLimiter {
	return &failureLimiter{perKey: perKey, global: global, window: window, counts: map[string]int{}}
}

func (l *failureLimiter) roll(now time.Time) {
	if now.Sub(l.windowStart) >= l.window || now.Before(l.windowStart) {
		l.windowStart = now
		l.total = 0
		clear(l.counts)
	}
}

// allow reports whether key may try now, and if not, how long until it may.
func (l *failureLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	if l.counts[key] >= l.perKey || l.total >= l.global {
		return false, l.windowStart.Add(l.window).Sub(now)
	}
	return true, 0
}

// fail records one failure for key.
func (l *failureLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	l.counts[key]++
	l.total++
}
