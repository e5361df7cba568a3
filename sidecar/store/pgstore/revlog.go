package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// The revocation log lives in keyless_revlog, ordered
// by seq, and folds to keyless_revocations, which answers lookups without
// reading the log. Both are written in one transaction that first locks
// keyless_revlog_head: log writers take turns, so sequence numbers follow
// commit order with no gaps, and every shared copy converges by them.

// ChannelRevocations is the LISTEN/NOTIFY channel told of every append to
// the log; the payload is the new entry's sequence number. A replica that
// follows it learns of a revocation made through another replica at once
// instead of at its next poll.
const ChannelRevocations = "keyless_revocations"

// ChannelKV is the channel told when the signing keys (bucket "keys")
// change; the payload is the bucket name.
const ChannelKV = "keyless_kv"

// logRetention is how long a log entry is kept after it was recorded even
// when it no longer matters, so that a follower away for less than that
// catches up from the log (lifted blocks included); the same as the
// embedded store's.
const logRetention = 24 * time.Hour

// SweepBatch bounds the rows one sweep transaction deletes.
const SweepBatch = 500

// sweepLock is the advisory lock key of the sweeps: one replica at a time.
const sweepLock = 0x6b6c2d7377656570 // "kl-sweep"

// Revoke implements [store.Revocations]: appended to the log and durable
// when it returns. A later expiry extends an earlier one; an earlier one
// changes nothing and adds no entry.
func (d *DB) Revoke(ctx context.Context, r store.Revocation, until time.Time) error {
	return d.write(ctx, r.Key(), until, false)
}

// Reset implements [store.Resetter]: sets the expiry exactly (an unblock
// lowers it), as a log entry followers apply as such.
func (d *DB) Reset(ctx context.Context, r store.Revocation, until time.Time) error {
	return d.write(ctx, r.Key(), until, true)
}

func (d *DB) write(ctx context.Context, r store.Revocation, until time.Time, reset bool) error {
	now := d.now()
	u := until.UnixNano()
	if !reset && u <= now.UnixNano() {
		return ctx.Err() // already over: nothing to record
	}
	changed := false
	err := d.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		changed = false
		// The head row lock: log writers take turns from here to commit.
		var last int64
		if err := tx.QueryRow(ctx, `SELECT last FROM keyless_revlog_head WHERE id = 1 FOR UPDATE`).Scan(&last); err != nil {
			return err
		}
		var old int64
		err := tx.QueryRow(ctx, `SELECT until_ns FROM keyless_revocations WHERE kind = $1 AND value = $2`,
			[]byte(r.Kind), []byte(r.Value)).Scan(&old)
		had := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if had && old > now.UnixNano() && (old == u || (!reset && old > u)) {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO keyless_revocations (kind, value, until_ns) VALUES ($1, $2, $3)
			ON CONFLICT (kind, value) DO UPDATE SET until_ns = EXCLUDED.until_ns`,
			[]byte(r.Kind), []byte(r.Value), u); err != nil {
			return err
		}
		seq := last + 1
		if _, err := tx.Exec(ctx, `UPDATE keyless_revlog_head SET last = $1 WHERE id = 1`, seq); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO keyless_revlog (seq, kind, value, until_ns, reset, at_ns)
			VALUES ($1, $2, $3, $4, $5, $6)`, seq, []byte(r.Kind), []byte(r.Value), u, reset, now.UnixNano()); err != nil {
			return err
		}
		// Delivered to listeners when (and only if) the transaction commits.
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ChannelRevocations, fmt.Sprint(seq))
		changed = err == nil
		return err
	})
	if err == nil && changed {
		d.wake()
	}
	return err
}

// AnyRevoked implements [store.Revocations].
func (d *DB) AnyRevoked(ctx context.Context, rs ...store.Revocation) (bool, error) {
	if len(rs) == 0 {
		return false, ctx.Err()
	}
	kinds := make([][]byte, len(rs))
	values := make([][]byte, len(rs))
	for i, r := range rs {
		kinds[i], values[i] = []byte(r.Kind), []byte(r.Value)
	}
	rows, err := d.pool.Query(ctx, `SELECT r.kind, r.value, r.until_ns FROM keyless_revocations r
		JOIN unnest($1::bytea[], $2::bytea[]) AS q(kind, value) ON r.kind = q.kind AND r.value = q.value`, kinds, values)
	if err != nil {
		return false, err
	}
	found := map[store.Revocation]int64{}
	for rows.Next() {
		var k, v []byte
		var until int64
		if err := rows.Scan(&k, &v, &until); err != nil {
			rows.Close()
			return false, err
		}
		found[store.Revocation{Kind: store.Kind(k), Value: string(v)}] = until
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	now := d.now().UnixMilli()
	for _, r := range rs {
		if until, ok := found[r.Key()]; ok && store.Applies(r, time.Unix(0, until).UnixMilli(), now) {
			return true, nil
		}
	}
	return false, nil
}

// Expiry returns the recorded expiry of a revocation, zero when there is
// none live (the issuer reads a watermark's cutoff with it).
func (d *DB) Expiry(ctx context.Context, r store.Revocation) (time.Time, error) {
	var u int64
	err := d.pool.QueryRow(ctx, `SELECT until_ns FROM keyless_revocations WHERE kind = $1 AND value = $2`,
		[]byte(r.Kind), []byte(r.Value)).Scan(&u)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil || u <= d.now().UnixNano() {
		return time.Time{}, err
	}
	return time.Unix(0, u), nil
}

// Since implements [store.Log].
func (d *DB) Since(ctx context.Context, after uint64, max int) ([]store.LogEntry, uint64, uint64, error) {
	var out []store.LogEntry
	var first, last int64
	err := d.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		out = out[:0]
		if err := tx.QueryRow(ctx, `SELECT h.last, COALESCE((SELECT min(seq) FROM keyless_revlog), h.last + 1)
			FROM keyless_revlog_head h WHERE id = 1`).Scan(&last, &first); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT seq, kind, value, until_ns, reset, at_ns FROM keyless_revlog
			WHERE seq > $1 ORDER BY seq LIMIT $2`, int64(after), max)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seq, until, at int64
			var k, v []byte
			var reset bool
			if err := rows.Scan(&seq, &k, &v, &until, &reset, &at); err != nil {
				return err
			}
			out = append(out, store.LogEntry{Seq: uint64(seq), Revocation: store.Revocation{Kind: store.Kind(k), Value: string(v)},
				Until: time.Unix(0, until), Reset: reset, At: time.Unix(0, at)})
		}
		return rows.Err()
	})
	return out, uint64(first), uint64(last), err
}

// Snapshot implements [store.Log]: the live revocations and the sequence
// number they are current to, read on one snapshot.
func (d *DB) Snapshot(ctx context.Context) ([]store.RevocationEntry, uint64, error) {
	var out []store.RevocationEntry
	var last int64
	now := d.now().UnixNano()
	err := d.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		out = out[:0]
		if err := tx.QueryRow(ctx, `SELECT last FROM keyless_revlog_head WHERE id = 1`).Scan(&last); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT kind, value, until_ns FROM keyless_revocations WHERE until_ns > $1`, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k, v []byte
			var until int64
			if err := rows.Scan(&k, &v, &until); err != nil {
				return err
			}
			out = append(out, store.RevocationEntry{Revocation: store.Revocation{Kind: store.Kind(k), Value: string(v)}, Until: time.Unix(0, until)})
		}
		return rows.Err()
	})
	return out, uint64(last), err
}

// ListRevocations returns every live revocation: what an issuer re-seeds a
// shared store (Redis) from after that store lost its data.
func (d *DB) ListRevocations(ctx context.Context) ([]store.RevocationEntry, error) {
	out, _, err := d.Snapshot(ctx)
	return out, err
}

// Sweep deletes expired revocations, replay-cache pairs and refilled
// rate-limit buckets, and log
// entries both expired and older than the retention from the oldest end
// (no holes), in batches of
// [SweepBatch] rows per transaction. Only one replica sweeps at a time:
// when another holds the sweep lock, Sweep returns at once with ran false.
func (d *DB) Sweep(ctx context.Context) (deleted int, ran bool, err error) {
	for {
		n, got, err := d.sweepBatch(ctx)
		deleted, ran = deleted+n, ran || got
		if err != nil || !got || n < SweepBatch {
			return deleted, ran, err
		}
	}
}

func (d *DB) sweepBatch(ctx context.Context) (int, bool, error) {
	now := d.now()
	var n int
	var got bool
	err := d.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		n, got = 0, false
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(sweepLock)).Scan(&got); err != nil || !got {
			return err
		}
		ct, err := tx.Exec(ctx, `DELETE FROM keyless_revocations WHERE ctid IN (
			SELECT ctid FROM keyless_revocations WHERE until_ns <= $1 LIMIT $2)`, now.UnixNano(), SweepBatch)
		if err != nil {
			return err
		}
		n = int(ct.RowsAffected())
		// Log entries go from the oldest end up to the first one still
		// needed, so what remains is contiguous.
		ct, err = tx.Exec(ctx, `DELETE FROM keyless_revlog WHERE seq IN (
			SELECT seq FROM keyless_revlog WHERE seq < COALESCE(
				(SELECT min(seq) FROM keyless_revlog WHERE until_ns > $1 OR at_ns > $2),
				(SELECT last + 1 FROM keyless_revlog_head WHERE id = 1))
			ORDER BY seq LIMIT $3)`, now.UnixNano(), now.Add(-logRetention).UnixNano(), SweepBatch)
		if err != nil {
			return err
		}
		n += int(ct.RowsAffected())
		r, err := sweepReplay(ctx, tx, now)
		n += r
		if err != nil {
			return err
		}
		r, err = sweepRateLimits(ctx, tx, now)
		n += r
		return err
	})
	return n, got, err
}

// Exclusive runs fn while holding the session advisory lock named by key,
// unless another session holds it: then it returns false at once without
// running fn. Replicas use it so that a periodic job (the issuer's sweeps)
// runs on one of them at a time. The lock is held on one pooled
// connection and released with it, even when the process dies.
func (d *DB) Exclusive(ctx context.Context, key int64, fn func(context.Context) error) (bool, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil || !got {
		return false, err
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key); err != nil {
			// The lock's session is in doubt: drop the connection, which
			// releases it.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	return true, fn(ctx)
}
