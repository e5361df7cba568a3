package main

// keyless serve replicas on one PostgreSQL database (docs/deployment-ha.md):
// choosing the database, the sweeps one replica runs at a time, and
// following what the other replicas do (key rotations, revocations).

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyless-dev/keyless/sidecar/authserver"
	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/lease"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/pgstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
)

// dbEnv names the database when --db is not given.
const dbEnv = "KEYLESS_DB"

// dbURL is the database to use: --db, else $KEYLESS_DB, else db: in the
// config; empty means the embedded bbolt file.
func dbURL(flag string, cfg *config.Config) string {
	if flag != "" {
		return flag
	}
	if v := os.Getenv(dbEnv); v != "" {
		return v
	}
	return cfg.DB
}

// issuerSweepLock is the advisory lock the replicas' sweeps take: one
// replica sweeps at a time ("kl-iswep").
const issuerSweepLock int64 = 0x6b6c2d6973776570

// runSharedSweeps runs the issuer's sweeps (expired device codes, ended
// failure-budget and lease-quota windows) and the database's (expired
// revocations and replay-cache pairs, the log) every interval, on whichever replica takes the sweep
// lock first; the others skip that round. Each sweep deletes in bounded
// batches.
func runSharedSweeps(ctx context.Context, db *pgstore.DB, s *authserver.Server, vending *lease.Service, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := db.Exclusive(ctx, issuerSweepLock, func(ctx context.Context) error {
			if _, err := s.Sweep(ctx); err != nil {
				return err
			}
			if vending != nil {
				for ctx.Err() == nil {
					n, err := vending.SweepQuotas(ctx, pgstore.SweepBatch)
					if err != nil {
						return err
					}
					if n < pgstore.SweepBatch {
						break
					}
				}
			}
			_, _, err := db.Sweep(ctx)
			return err
		})
		if err != nil && ctx.Err() == nil {
			log.Error("sweep failed", "err", err.Error())
		}
	}
}

// followInterval is how often a replica re-reads the keys and the log
// even without a notification: the safety net for notifications lost
// while its listening connection was down.
const followInterval = 30 * time.Second

// followPeers listens (LISTEN/NOTIFY) for the other replicas' changes
// until ctx ends: a key rotation makes this replica adopt the stored key
// set at once, so all publish and accept the same keys; a revocation
// wakes this replica's revocation followers as one made here would, and is
// copied from the log to the proxies' shared store (when there is one),
// so it reaches the proxies even when the replica that made it failed to
// write it there. Writes to the shared store are idempotent (an expiry is
// only ever extended), so copying an entry twice is harmless.
func followPeers(ctx context.Context, db *pgstore.DB, s *authserver.Server, shared *redisstore.Store, log *slog.Logger) {
	var seen uint64
	catchUp := func() {
		if shared == nil {
			return
		}
		for ctx.Err() == nil {
			es, first, last, err := db.Since(ctx, seen, 1000)
			if err != nil {
				return
			}
			if seen+1 < first {
				// Entries were compacted away before we read them: the
				// live state instead.
				snap, at, err := db.Snapshot(ctx)
				if err != nil {
					return
				}
				for _, e := range snap {
					if err := shared.Revoke(ctx, e.Revocation, e.Until); err != nil {
						return
					}
				}
				seen = at
				continue
			}
			for _, e := range es {
				var err error
				if r, ok := any(shared).(store.Resetter); ok && e.Reset {
					err = r.Reset(ctx, e.Revocation, e.Until)
				} else if !e.Reset {
					err = shared.Revoke(ctx, e.Revocation, e.Until)
				}
				if err != nil {
					log.Warn("store.follow", "err", err.Error())
					return
				}
				seen = e.Seq
			}
			if len(es) == 0 || seen >= last {
				return
			}
		}
	}
	refresh := func() {
		if err := s.ReloadKeys(ctx); err != nil && ctx.Err() == nil {
			log.Warn("keys.reload_failed", "err", err.Error())
		}
		catchUp()
	}
	for ctx.Err() == nil {
		notes := make(chan *pgconn.Notification)
		lost := make(chan struct{})
		conn, err := db.Pool().Acquire(ctx)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+pgstore.ChannelRevocations+"; LISTEN "+pgstore.ChannelKV)
			if err != nil {
				conn.Release()
			}
		}
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
				continue
			}
		}
		go func() {
			defer close(lost)
			for {
				n, err := conn.Conn().WaitForNotification(ctx)
				if err != nil {
					return
				}
				select {
				case notes <- n:
				case <-ctx.Done():
					return
				}
			}
		}()
		// Listening: whatever happened before is read now.
		refresh()
		tick := time.NewTicker(followInterval)
	listen:
		for {
			select {
			case n := <-notes:
				if n.Channel == pgstore.ChannelKV {
					if err := s.ReloadKeys(ctx); err != nil && ctx.Err() == nil {
						log.Warn("keys.reload_failed", "err", err.Error())
					}
				} else {
					db.RevocationNotified()
					catchUp()
				}
			case <-tick.C:
				refresh()
			case <-lost:
				break listen
			}
		}
		tick.Stop()
		// The connection lost its session (and its LISTEN): drop it.
		_ = conn.Conn().Close(context.WithoutCancel(ctx))
		conn.Release()
	}
}
