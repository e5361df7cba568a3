// Package memstore keeps replay entries and revocations in the memory of one
// process: the embedded default, and the reference the shared stores are
// tested against.
package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store"
)

// DefaultMaxEntries bounds the replay cache. At 60 s + 5 s of retention this
// admits about 15k fresh proofs per second before refusing.
const DefaultMaxEntries = 1 << 20

// Replay is a bounded, expiring jti cache. When full it sweeps expired
// entries and, if none can go, refuses with store.ErrFull: it never evicts a
// live entry, because that would reopen a replay window
// (docs/security.md#a8).
type Replay struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Max is the entry bound; zero means DefaultMaxEntries.
	Max int

	mu      sync.Mutex
	entries map[replayKey]int64 // expiry, unix nanoseconds
	// nextSweep is when expired entries are next removed: a full scan at
	// most once per second keeps Use O(1) amortized.
	nextSweep int64
}

// replayKey is (jkt, jti). Keys are the pair, never the proof string
// (docs/security.md#a9); both are bounded by the dpop package.
type replayKey struct{ jkt, jti string }

var _ store.Replay = (*Replay)(nil)

// Use implements dpop.ReplayCache.
func (r *Replay) Use(_ context.Context, jkt, jti string, until time.Time) error {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries == nil {
		r.entries = make(map[replayKey]int64)
	}
	k := replayKey{jkt, jti}
	if exp, ok := r.entries[k]; ok && exp > now {
		return dpop.ErrReplay
	}
	max := r.Max
	if max <= 0 {
		max = DefaultMaxEntries
	}
	if len(r.entries) >= max || now >= r.nextSweep {
		r.sweep(now)
		if len(r.entries) >= max {
			return store.ErrFull
		}
	}
	r.entries[k] = until.UnixNano()
	return nil
}

// Len is the number of entries held, live or not yet swept.
func (r *Replay) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

func (r *Replay) sweep(now int64) {
	for k, exp := range r.entries {
		if exp <= now {
			delete(r.entries, k)
		}
	}
	r.nextSweep = now + int64(time.Second)
}

func (r *Replay) now() int64 {
	if r.Now != nil {
		return r.Now().UnixNano()
	}
	return time.Now().UnixNano()
}

// Revocations holds revocations until their expiry.
type Revocations struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu sync.RWMutex
	m  map[store.Revocation]time.Time
}

var (
	_ store.Revocations = (*Revocations)(nil)
	_ store.Resetter    = (*Revocations)(nil)
)

// Revoke implements store.Revocations. A later expiry extends an earlier
// one; an earlier one never shortens it.
func (v *Revocations) Revoke(_ context.Context, r store.Revocation, until time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = make(map[store.Revocation]time.Time)
	}
	r = r.Key()
	if old, ok := v.m[r]; !ok || until.After(old) {
		v.m[r] = until
	}
	now := v.now()
	for k, exp := range v.m {
		if !exp.After(now) {
			delete(v.m, k)
		}
	}
	return nil
}

// AnyRevoked implements store.Revocations.
func (v *Revocations) AnyRevoked(_ context.Context, rs ...store.Revocation) (bool, error) {
	now := v.now()
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, r := range rs {
		if exp, ok := v.m[r.Key()]; ok && store.Applies(r, exp.UnixMilli(), now.UnixMilli()) {
			return true, nil
		}
	}
	return false, nil
}

// Reset implements store.Resetter.
func (v *Revocations) Reset(_ context.Context, r store.Revocation, until time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = make(map[store.Revocation]time.Time)
	}
	v.m[r.Key()] = until
	return nil
}

func (v *Revocations) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}
