package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/keyless-dev/keyless/sidecar/proxy"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
)

// storeEnv names the shared store when --store is not given.
const storeEnv = "KEYLESS_STORE"

// storeURL is --store, or $KEYLESS_STORE.
func storeURL(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv(storeEnv)
}

// openShared connects the shared store (Redis) that replicas use for
// replay, revocations, rate limits, nonce keys and WebSocket tickets. It
// checks that Redis answers and will not evict live keys: a store that
// drops replay entries would reopen replay windows.
func openShared(ctx context.Context, url string, maxAge, skew time.Duration, log *slog.Logger) (*redisstore.Store, error) {
	// go-redis's own lines (dial failures, several a second while Redis is
	// down) go through keyless's logger, rate-limited.
	redisstore.RouteLogs(log, 0)
	st, err := redisstore.New(url, redisstore.Options{MaxAge: maxAge, FutureSkew: skew})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := st.Client().Ping(cctx).Err(); err != nil {
		// Not fatal: requests that need the store get 503 until it is
		// back, and /readyz says so.
		log.Warn("store.unavailable", "err", err.Error())
		return st, nil
	}
	if err := st.CheckEviction(cctx); err != nil {
		if errors.Is(err, redisstore.ErrEvictionPolicy) {
			st.Close()
			return nil, fmt.Errorf("store: %w", err)
		}
		// Managed services may forbid CONFIG GET: say so, and go on.
		log.Warn("store.eviction_unchecked", "err", err.Error(), "fix", "make sure Redis runs with maxmemory-policy noeviction")
	}
	return st, nil
}

// sharedTickets keeps WebSocket tickets in the shared store, so a ticket
// issued by one replica can be redeemed at another, once.
type sharedTickets struct{ st *redisstore.Store }

var _ proxy.TicketStore = sharedTickets{}

func (s sharedTickets) Put(ctx context.Context, id string, t proxy.Ticket, until time.Time) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return s.st.PutOnce(ctx, "ticket:"+id, b, until)
}

func (s sharedTickets) Take(ctx context.Context, id string) (proxy.Ticket, bool, error) {
	b, ok, err := s.st.TakeOnce(ctx, "ticket:"+id)
	if err != nil || !ok {
		return proxy.Ticket{}, false, err
	}
	var t proxy.Ticket
	if err := json.Unmarshal(b, &t); err != nil {
		return proxy.Ticket{}, false, err
	}
	return t, true, nil
}

// issuerDB is what the issuer and vending service keep: the durable
// database, with revocations written to it first and then to the shared
// store, so every proxy replica sees them at once.
type issuerDB struct {
	store.KV
	store.Revocations
	db durableDB
}

// ListRevocations lists the durable log's live revocations.
func (d issuerDB) ListRevocations(ctx context.Context) ([]store.RevocationEntry, error) {
	return d.db.ListRevocations(ctx)
}

// Reset implements store.Resetter (lifting a block): durable first, then
// the shared store.
func (d issuerDB) Reset(ctx context.Context, r store.Revocation, until time.Time) error {
	if rs, ok := d.Revocations.(store.Resetter); ok {
		return rs.Reset(ctx, r, until)
	}
	return d.db.Reset(ctx, r, until)
}

// mirrored returns db with revocations mirrored to st, and starts the
// converger that keeps st equal to db's durable log: it re-seeds st when
// it lost its data and applies, by sequence number, what st missed while
// stalled or unreachable (docs/revocation.md).
func mirrored(ctx context.Context, db durableDB, st *redisstore.Store, log *slog.Logger) issuerDB {
	conv := &redisstore.Converger{Log: db, Shared: st, OnErr: func(err error) { log.Warn("store.converge", "err", err.Error()) }}
	go func() {
		// The converger runs after the first deployment's InitEpoch: a
		// reseed that found the script missing first would start the
		// restart guard (FutureSkew of 503s) on the brand-new store.
		for {
			err := declareFresh(ctx, db, st, time.Now())
			if err == nil {
				break
			}
			log.Warn("store.init", "err", err.Error())
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		conv.Run(ctx)
	}()
	return issuerDB{KV: db, Revocations: redisstore.Mirror{Durable: db, Shared: st, Converger: conv}, db: db}
}

// sharedBucket and sharedInitKey record, in the issuer's durable
// database, that it once declared the shared store fresh.
const (
	sharedBucket  = "shared-store"
	sharedInitKey = "initialized"
)

// declareFresh runs redisstore's InitEpoch once in the life of the
// issuer's durable database: at the first deployment, so that a
// brand-new Redis serves at once instead of refusing the first
// FutureSkew of proofs as if it had lost its data. Until the issuer has
// seeded it no replica accepts a proof (every one answers 503 "not
// seeded"), so nothing can be replayed across it. After that first time
// an empty Redis is one that lost its data, and the restart guard applies
// (InitEpoch also moves nothing when any replay bucket already has an
// epoch). A new data directory with a Redis that kept its replay epochs is
// still guarded; one whose Redis also came back empty counts as a first
// deployment. See redisstore's package doc, "Replay".
func declareFresh(ctx context.Context, db store.KV, st *redisstore.Store, now time.Time) error {
	var done bool
	if err := db.View(ctx, func(tx store.Tx) error {
		done = tx.Get(sharedBucket, sharedInitKey) != nil
		return nil
	}); err != nil {
		return err
	}
	if done {
		return nil
	}
	if err := st.InitEpoch(ctx, now.Add(-time.Hour)); err != nil {
		return err
	}
	return db.Update(ctx, func(tx store.Tx) error {
		return tx.Put(sharedBucket, sharedInitKey, []byte(now.UTC().Format(time.RFC3339)))
	})
}

// sharedProxyOptions puts every piece of the proxy's state in st.
func sharedProxyOptions(o proxy.Options, st *redisstore.Store) proxy.Options {
	o.Replay, o.Revocations, o.Limiter, o.NonceKey, o.Tickets = st, st, st, st, sharedTickets{st}
	return o
}
