package lease

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// Renewal is a stored renewal token (under the SHA-256 of the token, never
// the token): the lease family it renews and whether it was used.
type Renewal struct {
	Family Family `json:"grant"`
	Used   bool   `json:"used,omitempty"`
}

// ErrRenewalUsed is returned by [RenewalStore.Rotate] when the token was
// already used (or is gone): reuse, which revokes the family.
var ErrRenewalUsed = errors.New("lease: renewal token already used")

// RenewalStore keeps renewal tokens. Implementations: [NewMemRenewals]
// (one process) and [KVRenewals] (durable, over a store.KV such as
// boltstore).
type RenewalStore interface {
	// Put stores a new token's record.
	Put(ctx context.Context, hash string, r *Renewal) error
	// Get returns the record, or nil when there is none (or it is past
	// its family's limit).
	Get(ctx context.Context, hash string) (*Renewal, error)
	// Rotate atomically marks old used and stores next under newHash; it
	// returns ErrRenewalUsed if old was already used, so two concurrent
	// renewals cannot both succeed.
	Rotate(ctx context.Context, old, newHash string, next *Renewal) error
}

// memRenewals is the in-memory RenewalStore.
type memRenewals struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*Renewal
}

// NewMemRenewals returns an in-memory [RenewalStore]; now nil means
// time.Now.
func NewMemRenewals(now func() time.Time) RenewalStore {
	if now == nil {
		now = time.Now
	}
	return &memRenewals{now: now, m: map[string]*Renewal{}}
}

func (m *memRenewals) Put(_ context.Context, h string, r *Renewal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for k, v := range m.m { // sweep families past their limit
		if !now.Before(v.Family.FamilyExpiry) {
			delete(m.m, k)
		}
	}
	c := *r
	m.m[h] = &c
	return nil
}

func (m *memRenewals) Get(_ context.Context, h string) (*Renewal, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.m[h]
	if !ok {
		return nil, nil
	}
	c := *r
	return &c, nil
}

func (m *memRenewals) Rotate(_ context.Context, old, nh string, next *Renewal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.m[old]
	if !ok || r.Used {
		return ErrRenewalUsed
	}
	r.Used = true
	c := *next
	m.m[nh] = &c
	return nil
}

// KVRenewals is a durable [RenewalStore] over a store.KV (boltstore):
// renewals survive a restart.
type KVRenewals struct {
	KV store.KV
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

const bucketRenewals = "lease_renewals"

var _ RenewalStore = (*KVRenewals)(nil)

// Put implements RenewalStore.
func (k *KVRenewals) Put(ctx context.Context, h string, r *Renewal) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return k.KV.Update(ctx, func(tx store.Tx) error { return tx.Put(bucketRenewals, h, b) })
}

// Get implements RenewalStore.
func (k *KVRenewals) Get(ctx context.Context, h string) (*Renewal, error) {
	var r *Renewal
	err := k.KV.View(ctx, func(tx store.Tx) error {
		b := tx.Get(bucketRenewals, h)
		if b == nil {
			return nil
		}
		r = new(Renewal)
		return json.Unmarshal(b, r)
	})
	return r, err
}

// Rotate implements RenewalStore in one transaction.
func (k *KVRenewals) Rotate(ctx context.Context, old, nh string, next *Renewal) error {
	nb, err := json.Marshal(next)
	if err != nil {
		return err
	}
	return k.KV.Update(ctx, func(tx store.Tx) error {
		b := tx.Get(bucketRenewals, old)
		if b == nil {
			return ErrRenewalUsed
		}
		var r Renewal
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		if r.Used {
			return ErrRenewalUsed
		}
		r.Used = true
		ub, err := json.Marshal(&r)
		if err != nil {
			return err
		}
		if err := tx.Put(bucketRenewals, old, ub); err != nil {
			return err
		}
		return tx.Put(bucketRenewals, nh, nb)
	})
}

// Sweep deletes records of families past their limit; call it now and
// then (e.g. hourly).
func (k *KVRenewals) Sweep(ctx context.Context) error {
	now := time.Now()
	if k.Now != nil {
		now = k.Now()
	}
	return k.KV.Update(ctx, func(tx store.Tx) error {
		var dead []string
		err := tx.ForEach(bucketRenewals, func(key string, v []byte) error {
			var r Renewal
			if json.Unmarshal(v, &r) != nil || !now.Before(r.Family.FamilyExpiry) {
				dead = append(dead, key)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, key := range dead {
			if err := tx.Delete(bucketRenewals, key); err != nil {
				return err
			}
		}
		return nil
	})
}
