package proxy

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// DefaultKeyRate is the proof rate per key assumed, for the replay quota,
// on authenticated routes without a per-subject rate limit.
const DefaultKeyRate = 20

// errKeyQuota marks a proof refused because its key holds its quota of
// live replay entries.
var errKeyQuota = errors.New("proxy: key's replay quota reached")

// keyQuota bounds the live replay-cache entries of each key thumbprint,
// so one lease holder cannot fill the shared replay cache and have every
// other caller refused (store.ErrFull): a key past its quota is refused
// alone, with 429, and checked before its proof's signature. The counts
// are per replica (each replica bounds what it records), so a shared
// store holds at most replicas x max entries per key.
//
// The quota is a key's legitimate maximum: a key held to R proofs per
// second with bursts of B has at most R x window + B live entries, where
// window (MaxAge + FutureSkew) is how long an entry lives (RFC 9449
// section 11.1).
type keyQuota struct {
	max int
	now func() time.Time

	mu        sync.Mutex
	keys      map[string][]int64 // jkt -> expiry times (UnixNano), oldest first
	nextSweep int64
	window    time.Duration
}

func newKeyQuota(max int, window time.Duration, now func() time.Time) *keyQuota {
	return &keyQuota{max: max, now: now, keys: make(map[string][]int64), window: window}
}

// keyQuotaMax derives the per-key quota from the routes' rate limits
// (dpop.replay_per_key overrides it): the sum of the per-subject rates a
// key may spend across routes, DefaultKeyRate for a route without one,
// times the entry lifetime, plus the bursts, plus DefaultKeyRate for the
// WebSocket ticket endpoint, which is no route.
func keyQuotaMax(cfg Config) int {
	if cfg.DPoP.ReplayPerKey != 0 {
		return cfg.DPoP.ReplayPerKey
	}
	window := (cfg.DPoP.MaxAge + cfg.DPoP.FutureSkew).Seconds()
	rate, burst := 0.0, 0
	for _, r := range cfg.Routes {
		if r.Anonymous {
			continue
		}
		if r.RateLimit == nil || r.RateLimit.PerSubject.IsZero() {
			rate += DefaultKeyRate
			burst += DefaultKeyRate
			continue
		}
		rate += r.RateLimit.PerSubject.Rate
		burst += max(r.RateLimit.PerSubject.Burst, int(math.Ceil(r.RateLimit.PerSubject.Rate)))
	}
	return int(math.Ceil(rate*window)) + burst + DefaultKeyRate
}

// check reports whether jkt may record another proof; when it may not,
// retry is when its oldest entry expires.
func (q *keyQuota) check(jkt string) (retry time.Duration, ok bool) {
	if q == nil {
		return 0, true
	}
	now := q.now().UnixNano()
	q.mu.Lock()
	defer q.mu.Unlock()
	exp := q.prune(jkt, now)
	if len(exp) < q.max {
		return 0, true
	}
	return time.Duration(exp[0] - now), false
}

// add records one live entry of jkt until until.
func (q *keyQuota) add(jkt string, until time.Time) {
	now := q.now().UnixNano()
	q.mu.Lock()
	defer q.mu.Unlock()
	if now >= q.nextSweep {
		for k := range q.keys {
			q.prune(k, now)
		}
		q.nextSweep = now + int64(q.window)
	}
	q.keys[jkt] = append(q.keys[jkt], until.UnixNano())
}

// prune drops jkt's expired entries (expiries are recorded in about
// increasing order: iat + a fixed window) and returns the rest.
func (q *keyQuota) prune(jkt string, now int64) []int64 {
	exp := q.keys[jkt]
	i := 0
	for i < len(exp) && exp[i] <= now {
		i++
	}
	if i == len(exp) {
		delete(q.keys, jkt)
		return nil
	}
	if i > 0 {
		exp = append(exp[:0], exp[i:]...)
		q.keys[jkt] = exp
	}
	return exp
}

// quotaReplay records, per key, the entries the replay store accepted,
// and refuses a key past its quota (errKeyQuota) before the store is
// asked.
type quotaReplay struct {
	store.Replay
	q *keyQuota
}

func (r quotaReplay) Use(ctx context.Context, jkt, jti string, until time.Time) error {
	if _, ok := r.q.check(jkt); !ok {
		return errKeyQuota
	}
	if err := r.Replay.Use(ctx, jkt, jti, until); err != nil {
		return err
	}
	r.q.add(jkt, until)
	return nil
}

// checkKeyQuota is the cheap check before the proof's signature: the
// lease's key (cnf.jkt) must have room in its replay quota, else 429 with
// Retry-After until its oldest entry expires.
func (p *Proxy) checkKeyQuota(x *exchange) *Error {
	if retry, ok := p.quota.check(x.claims.JKT); !ok {
		return keyQuotaError(retry)
	}
	return nil
}

func keyQuotaError(retry time.Duration) *Error {
	return &Error{Code: CodeRateLimited, Msg: "too many proofs from this key", Rule: "replay.per_key", RetryAfter: max(retry, time.Second)}
}
