package authserver

import (
	"context"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// failureLimiter counts failures (wrong user codes, wrong passwords,
// unknown device codes) in fixed windows per source ([sourceKey]). Once a
// source has used its budget it is refused until the window ends, before
// any lookup, so it learns nothing more. There is deliberately no global
// budget: a global lockout lets five wrong codes from anyone refuse every
// owner of a valid code. Guessing stays infeasible through the code's
// length and these per-source budgets; docs/security.md states the bound
// (RFC 8628 section 5.1).
//
// The limiter tracks at most maxSources sources per window; a source it
// cannot track is refused (fails closed) rather than let through
// uncounted.
//
// https://www.rfc-editor.org/rfc/rfc8628#section-5.1
type failureLimiter struct {
	perSource  int
	window     time.Duration
	maxSources int

	mu          sync.Mutex
	windowStart time.Time
	counts      map[string]int

	// kv, when set, holds the counts instead of memory, so that replicas
	// sharing one database (Options.SharedBudgets) share each source's
	// budget; name keeps the limiters' counts apart. Windows are then
	// aligned (now truncated to the window), and a count that cannot be
	// read refuses (fails closed).
	kv   store.KV
	name string
}

// bucketBudgets holds the shared limiters' counts: key = [indexKey] of
// the window's end and name, NUL, source (so the sweep finds ended
// windows first); value = the count in decimal.
const bucketBudgets = "budgets"

func (l *failureLimiter) sharedKey(source string, now time.Time) (string, time.Time) {
	end := now.Truncate(l.window).Add(l.window)
	return indexKey(end, l.name+"\x00"+source), end
}

// allowIn is allow reading a shared count in tx (a memory limiter ignores
// tx).
func (l *failureLimiter) allowIn(tx store.Tx, source string, now time.Time) (bool, time.Duration) {
	if l.kv == nil {
		return l.allow(source, now)
	}
	k, end := l.sharedKey(source, now)
	if n, _ := strconv.Atoi(string(tx.Get(bucketBudgets, k))); n >= l.perSource {
		return false, end.Sub(now)
	}
	return true, 0
}

// failIn is fail counting in tx (a memory limiter ignores tx).
func (l *failureLimiter) failIn(tx store.Tx, source string, now time.Time) error {
	if l.kv == nil {
		l.fail(source, now)
		return nil
	}
	k, _ := l.sharedKey(source, now)
	n, _ := strconv.Atoi(string(tx.Get(bucketBudgets, k)))
	return tx.Put(bucketBudgets, k, []byte(strconv.Itoa(n+1)))
}

// allowCtx is allow outside a transaction: a shared count is read in its
// own; when it cannot be read the source is refused for a window.
func (l *failureLimiter) allowCtx(ctx context.Context, source string, now time.Time) (bool, time.Duration) {
	if l.kv == nil {
		return l.allow(source, now)
	}
	ok, wait := false, l.window
	if err := l.kv.View(ctx, func(tx store.Tx) error { ok, wait = l.allowIn(tx, source, now); return nil }); err != nil {
		return false, l.window
	}
	return ok, wait
}

// failCtx is fail outside a transaction. A failure that cannot be
// recorded is lost, but then the next allowCtx cannot read either and
// refuses.
func (l *failureLimiter) failCtx(ctx context.Context, source string, now time.Time) {
	if l.kv == nil {
		l.fail(source, now)
		return
	}
	_ = l.kv.Update(ctx, func(tx store.Tx) error { return l.failIn(tx, source, now) })
}

// defaultMaxSources bounds each failureLimiter's memory: 65,536 sources
// with a failure in one window.
const defaultMaxSources = 1 << 16

func newFailureLimiter(perSource int, window time.Duration, maxSources int) *failureLimiter {
	return &failureLimiter{perSource: perSource, window: window, maxSources: maxSources, counts: map[string]int{}}
}

func (l *failureLimiter) roll(now time.Time) {
	if now.Sub(l.windowStart) >= l.window || now.Before(l.windowStart) {
		l.windowStart = now
		clear(l.counts)
	}
}

// allow reports whether source may try now, and if not, how long until it
// may.
func (l *failureLimiter) allow(source string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	n, tracked := l.counts[source]
	if n >= l.perSource || (!tracked && len(l.counts) >= l.maxSources) {
		return false, l.windowStart.Add(l.window).Sub(now)
	}
	return true, 0
}

// fail records one failure for source.
func (l *failureLimiter) fail(source string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	if _, tracked := l.counts[source]; !tracked && len(l.counts) >= l.maxSources {
		return // allow already refuses it
	}
	l.counts[source]++
}

// sourceKey is what a budget is charged to: an IPv4 address, or the /64
// of an IPv6 address (one subscriber or host is usually given a whole
// /64, so counting single IPv6 addresses would give it 2^64 budgets).
// An IPv4-mapped IPv6 address counts as its IPv4 address.
func sourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}
