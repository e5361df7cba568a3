// Package pgstore keeps the issuer's durable state in PostgreSQL, so that
// several `keyless serve` replicas share it (docs/deployment-ha.md): the
// [store.KV] buckets of the authorization server and the vending service
// (device codes, refresh families, renewal tokens, signing keys) and the
// revocation log ([store.Log]), behind the interfaces the embedded bbolt
// store implements.
//
// Concurrency is the database's, never a lock in the process:
//   - every [DB.Update] is a SERIALIZABLE transaction, retried from the
//     start on a serialization failure, so a read-modify-write (redeeming
//     a device code, rotating a refresh token, counting a budget) happens
//     as if the replicas took turns: a code is redeemed once, a refresh
//     token rotates once;
//   - appending to the revocation log locks its one head row, so entries
//     get gapless sequence numbers in commit order;
//   - sweeps run on one replica at a time (pg_try_advisory_xact_lock), in
//     bounded batches.
//
// A write is durable (committed) when the call returns nil. A failure of
// the database inside a transaction makes the whole call fail with that
// error, whatever the callback returned, so a refusal is never built on a
// read that did not happen (the issuer answers 503, docs/security.md).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// Options configure [Open].
type Options struct {
	// Now is the clock for revocation expiry; nil means time.Now.
	Now func() time.Time
	// MaxConns bounds the connection pool; zero means pgxpool's default
	// (the larger of 4 and the number of CPUs).
	MaxConns int32
	// ConnectTimeout bounds one connection attempt; zero means 5 s, so an
	// unreachable database fails requests quickly (503) instead of
	// holding them.
	ConnectTimeout time.Duration
}

// maxAttempts bounds the retries of a transaction that lost a
// serialization race; each retry runs the callback again from the start.
const maxAttempts = 20

// DB is an open store: a pool of connections to one database.
type DB struct {
	pool    *pgxpool.Pool
	now     func() time.Time
	onWrite atomic.Pointer[func()]
}

// OnRevocation sets fn to run after every committed change of the
// revocation log made through this store, and on every
// [DB.RevocationNotified]: the issuer wakes the followers of its
// revocation feed with it.
func (d *DB) OnRevocation(fn func()) { d.onWrite.Store(&fn) }

// RevocationNotified tells the store that another replica appended to the
// log (its NOTIFY on [ChannelRevocations] arrived): the followers of this
// replica's feed are woken as if the change had been made here.
func (d *DB) RevocationNotified() { d.wake() }

func (d *DB) wake() {
	if fn := d.onWrite.Load(); fn != nil {
		(*fn)()
	}
}

var (
	_ store.KV  = (*DB)(nil)
	_ store.Log = (*DB)(nil)
)

// Open connects to the database at url (postgres://...), migrates its
// schema to [SchemaVersion] and returns the store. It refuses a schema
// newer than this build knows ([ErrSchemaTooNew]).
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	return open(ctx, url, opts, migrations)
}

func open(ctx context.Context, url string, opts Options, known []string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The URL may hold a password: say only that it did not parse.
		return nil, errors.New("pgstore: the database URL does not parse (want postgres://user@host:port/db)")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	if cfg.ConnConfig.ConnectTimeout <= 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if _, err := migrate(ctx, pool, known); err != nil {
		pool.Close()
		if errors.Is(err, ErrSchemaTooNew) {
			return nil, err
		}
		return nil, fmt.Errorf("pgstore: migrate: %w", err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &DB{pool: pool, now: now}, nil
}

// Close closes every connection.
func (d *DB) Close() error { d.pool.Close(); return nil }

// Ping checks that the database answers (readiness).
func (d *DB) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }

// Pool is the connection pool (LISTEN, tests).
func (d *DB) Pool() *pgxpool.Pool { return d.pool }

// retryable reports whether err is a lost race the transaction can be
// run again for: a serialization failure or a deadlock (SQLSTATE 40001,
// 40P01).
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// inTx runs fn in a transaction with opts, again from the start while it
// loses serialization races (at most maxAttempts times, with a short
// randomized backoff).
func (d *DB) inTx(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, d.pool, opts, fn)
		if err == nil || !retryable(err) || attempt == maxAttempts {
			if err != nil && retryable(err) {
				return fmt.Errorf("pgstore: gave up after %d serialization conflicts: %w", attempt, err)
			}
			return err
		}
		backoff := time.Duration(rand.Int64N(int64(attempt) * int64(2*time.Millisecond)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
}

// Update implements [store.KV]: a SERIALIZABLE transaction, committed when
// it returns nil. fn may run more than once (after a serialization
// failure), so it must not have effects outside the transaction other than
// setting its results.
func (d *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	return d.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(ptx pgx.Tx) error {
		return runFn(ctx, ptx, false, fn)
	})
}

// View implements [store.KV]: a read-only transaction on one snapshot.
func (d *DB) View(ctx context.Context, fn func(store.Tx) error) error {
	return d.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(ptx pgx.Tx) error {
		return runFn(ctx, ptx, true, fn)
	})
}

// runFn calls fn; a database error seen by any of its calls wins over
// fn's own result (store.Tx.Get has no error to return).
func runFn(ctx context.Context, ptx pgx.Tx, readOnly bool, fn func(store.Tx) error) error {
	t := &tx{ctx: ctx, tx: ptx, readOnly: readOnly}
	ferr := fn(t)
	if t.err != nil {
		return t.err
	}
	return ferr
}

type tx struct {
	ctx      context.Context
	tx       pgx.Tx
	readOnly bool
	err      error // the first database error; every later call fails
}

func (t *tx) fail(err error) error {
	if t.err == nil {
		t.err = err
	}
	return t.err
}

func (t *tx) Get(bucket, key string) []byte {
	if t.err != nil {
		return nil
	}
	var v []byte
	err := t.tx.QueryRow(t.ctx, `SELECT value FROM keyless_kv WHERE bucket = $1 AND key = $2`,
		[]byte(bucket), []byte(key)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		t.fail(err)
		return nil
	}
	if v == nil {
		v = []byte{} // present but empty, as bbolt returns it
	}
	return v
}

var errReadOnly = errors.New("pgstore: write in a read-only transaction")

func (t *tx) Put(bucket, key string, value []byte) error {
	if t.err != nil {
		return t.err
	}
	if t.readOnly {
		return errReadOnly
	}
	if value == nil {
		value = []byte{}
	}
	_, err := t.tx.Exec(t.ctx, `INSERT INTO keyless_kv (bucket, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (bucket, key) DO UPDATE SET value = EXCLUDED.value`, []byte(bucket), []byte(key), value)
	if err != nil {
		return t.fail(err)
	}
	return nil
}

func (t *tx) Delete(bucket, key string) error {
	if t.err != nil {
		return t.err
	}
	if t.readOnly {
		return errReadOnly
	}
	if _, err := t.tx.Exec(t.ctx, `DELETE FROM keyless_kv WHERE bucket = $1 AND key = $2`, []byte(bucket), []byte(key)); err != nil {
		return t.fail(err)
	}
	return nil
}

// forEachPage is how many rows ForEach reads per query.
const forEachPage = 256

// ForEach reads the bucket a page at a time (keyset pagination, on the
// transaction's one snapshot) and calls fn between queries, so that fn may
// call the transaction's other methods (a connection runs one query at a
// time) and a callback that stops early (a bounded sweep) reads little.
func (t *tx) ForEach(bucket string, fn func(key string, value []byte) error) error {
	var after []byte
	for first := true; ; first = false {
		if t.err != nil {
			return t.err
		}
		q := `SELECT key, value FROM keyless_kv WHERE bucket = $1 AND key > $2 ORDER BY key LIMIT $3`
		if first {
			q = `SELECT key, value FROM keyless_kv WHERE bucket = $1 AND ($2::bytea IS NULL) ORDER BY key LIMIT $3`
		}
		rows, err := t.tx.Query(t.ctx, q, []byte(bucket), after, forEachPage)
		if err != nil {
			return t.fail(err)
		}
		type kv struct {
			k []byte
			v []byte
		}
		var page []kv
		for rows.Next() {
			var k, v []byte
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				return t.fail(err)
			}
			if v == nil {
				v = []byte{}
			}
			page = append(page, kv{k, v})
		}
		if err := rows.Err(); err != nil {
			return t.fail(err)
		}
		for _, e := range page {
			if err := fn(string(e.k), e.v); err != nil {
				return err
			}
		}
		if len(page) < forEachPage {
			return nil
		}
		after = page[len(page)-1].k
	}
}
