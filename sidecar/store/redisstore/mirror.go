package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// Mirror is the issuer's store.Revocations when proxies share Redis: every
// revocation is written to the durable list first (boltstore, the source
// of truth that re-seeds Redis after a loss), then to Shared, which pushes
// it to every proxy replica.
//
//	authserver.Options{Revocations: redisstore.Mirror{Durable: db, Shared: st}}
//
// Without a Converger, Revoke returns the first error: a revocation that
// reached Durable but not Shared is reported as failed, so the caller
// answers 5xx and the client retries (Revoke is idempotent). With one, a
// revocation is acknowledged once durable and Redis converges to it.
type Mirror struct {
	Durable store.Revocations
	Shared  store.Revocations
	// Converger, when set, takes over a revocation Shared could not
	// take: Revoke answers once Durable has it (durable first) and the
	// converger brings Redis, and every replica, up to date as soon as
	// Redis answers. Until then the replicas cannot reach Redis either
	// and answer 503 (never a pass).
	Converger *Converger
}

var (
	_ store.Revocations = Mirror{}
	_ store.Resetter    = Mirror{}
)

// Reset implements store.Resetter: Durable first, then Shared. Both must
// implement it.
func (m Mirror) Reset(ctx context.Context, r store.Revocation, until time.Time) error {
	d, ok1 := m.Durable.(store.Resetter)
	s, ok2 := m.Shared.(store.Resetter)
	if !ok1 || !ok2 {
		return errors.New("redisstore: mirror: a store cannot reset revocations")
	}
	if err := d.Reset(ctx, r, until); err != nil {
		return err
	}
	return m.shared(s.Reset(ctx, r, until))
}

// Revoke implements store.Revocations.
func (m Mirror) Revoke(ctx context.Context, r store.Revocation, until time.Time) error {
	if err := m.Durable.Revoke(ctx, r, until); err != nil {
		return err
	}
	return m.shared(m.Shared.Revoke(ctx, r, until))
}

// shared is the outcome of a write to Shared after Durable took it.
func (m Mirror) shared(err error) error {
	if m.Converger != nil {
		m.Converger.Kick() // records the sequence number, or retries
		return nil
	}
	return err
}

// AnyRevoked implements store.Revocations: revoked in either. Durable is
// asked first; Shared only when Durable says no, and its error is returned
// (fail closed), since another issuer may have revoked through it.
func (m Mirror) AnyRevoked(ctx context.Context, rs ...store.Revocation) (bool, error) {
	revoked, err := m.Durable.AnyRevoked(ctx, rs...)
	if err != nil || revoked {
		return revoked, err
	}
	revoked, err = m.Shared.AnyRevoked(ctx, rs...)
	if err != nil {
		return false, errors.Join(errors.New("redisstore: mirror: shared revocations"), err)
	}
	return revoked, nil
}
