// Package keyquota bounds how many live entries one key may hold in a
// shared, expiring store, so one caller cannot fill it for everyone: the
// DPoP replay cache per key thumbprint (RFC 9449 section 11.1), WebSocket
// tickets per subject.
//
// # Use
//
// [New] a [Quota]; [Quota.Check] before the expensive work (a proof's
// signature), [Quota.Add] once an entry was stored. [Replay] wraps a
// store.Replay so that both happen around Use. Counts are in memory, per
// process: with several replicas a shared store holds at most replicas x
// max entries per key.
package keyquota

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// ErrQuota is returned by [Replay.Use] for a key that holds its quota of
// live entries. Callers answer 429 with Retry-After ([Quota.Check]).
var ErrQuota = errors.New("keyquota: key holds its quota of live entries")

// Quota counts live entries per key. A nil *Quota allows everything. It is
// safe for concurrent use.
type Quota struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu        sync.Mutex
	keys      map[string][]int64 // key -> expiry times (UnixNano), about oldest first
	nextSweep int64
}

// New returns a quota of max live entries per key; window is about how
// long an entry lives (it paces the sweep of idle keys); now nil means
// time.Now.
func New(max int, window time.Duration, now func() time.Time) *Quota {
	if now == nil {
		now = time.Now
	}
	return &Quota{max: max, window: window, now: now, keys: make(map[string][]int64)}
}

// Check reports whether key may add an entry; when it may not, retry is
// when its oldest entry expires.
func (q *Quota) Check(key string) (retry time.Duration, ok bool) {
	if q == nil {
		return 0, true
	}
	now := q.now().UnixNano()
	q.mu.Lock()
	defer q.mu.Unlock()
	exp := q.prune(key, now)
	if len(exp) < q.max {
		return 0, true
	}
	return time.Duration(exp[0] - now), false
}

// Add records one live entry of key until until.
func (q *Quota) Add(key string, until time.Time) {
	if q == nil {
		return
	}
	now := q.now().UnixNano()
	q.mu.Lock()
	defer q.mu.Unlock()
	if now >= q.nextSweep {
		for k := range q.keys {
			q.prune(k, now)
		}
		q.nextSweep = now + int64(q.window)
	}
	q.keys[key] = append(q.keys[key], until.UnixNano())
}

// prune drops key's expired entries (expiries arrive in about increasing
// order: a fixed lifetime after issue) and returns the rest.
func (q *Quota) prune(key string, now int64) []int64 {
	exp := q.keys[key]
	i := 0
	for i < len(exp) && exp[i] <= now {
		i++
	}
	if i == len(exp) {
		delete(q.keys, key)
		return nil
	}
	if i > 0 {
		exp = append(exp[:0], exp[i:]...)
		q.keys[key] = exp
	}
	return exp
}

// Replay is a store.Replay whose entries are counted per key thumbprint:
// a key at its quota gets ErrQuota before the store is asked.
type Replay struct {
	store.Replay
	Quota *Quota
}

var _ store.Replay = Replay{}

// Use implements store.Replay.
func (r Replay) Use(ctx context.Context, jkt, jti string, until time.Time) error {
	if _, ok := r.Quota.Check(jkt); !ok {
		return ErrQuota
	}
	if err := r.Replay.Use(ctx, jkt, jti, until); err != nil {
		return err
	}
	r.Quota.Add(jkt, until)
	return nil
}
