package pgstore

import (
	"context"
	"errors"

	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store"
)

var _ store.Replay = (*DB)(nil)

// Use implements [store.Replay] (RFC 9449 section 11.1): the pair (jkt,
// jti) is recorded until until, in one statement: the insert wins, or an
// expired record of the pair is taken over, or nothing happens and the
// proof is a replay. Replicas sharing the database therefore let exactly
// one of concurrent copies through, whichever replica each reaches.
//
// https://www.rfc-editor.org/rfc/rfc9449#section-11.1
func (d *DB) Use(ctx context.Context, jkt, jti string, until time.Time) error {
	var one int
	err := d.pool.QueryRow(ctx, `INSERT INTO keyless_replay (jkt, jti, until_ns) VALUES ($1, $2, $3)
		ON CONFLICT (jkt, jti) DO UPDATE SET until_ns = EXCLUDED.until_ns
		WHERE keyless_replay.until_ns <= $4
		RETURNING 1`, []byte(jkt), []byte(jti), until.UnixNano(), d.now().UnixNano()).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return dpop.ErrReplay
	}
	return err
}

// sweepReplay deletes up to SweepBatch expired pairs in tx.
func sweepReplay(ctx context.Context, tx pgx.Tx, now time.Time) (int, error) {
	ct, err := tx.Exec(ctx, `DELETE FROM keyless_replay WHERE ctid IN (
		SELECT ctid FROM keyless_replay WHERE until_ns <= $1 LIMIT $2)`, now.UnixNano(), SweepBatch)
	return int(ct.RowsAffected()), err
}
