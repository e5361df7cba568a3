package pgstore

import (
	"context"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyless-dev/keyless/sidecar/ratelimit"
)

var _ ratelimit.Limiter = (*DB)(nil)

// Allow implements [ratelimit.Limiter] with the same token bucket as
// [ratelimit.Memory], its state a row locked for the update (SELECT ...
// FOR UPDATE): replicas sharing the database take tokens from one bucket
// per key, one at a time.
func (d *DB) Allow(ctx context.Context, key string, l ratelimit.Limit, now time.Time) (ratelimit.Result, error) {
	if l.IsZero() {
		return ratelimit.Result{Allowed: true}, nil
	}
	burst := float64(l.Burst)
	if l.Burst <= 0 {
		burst = math.Max(1, math.Ceil(l.Rate))
	}
	var res ratelimit.Result
	err := d.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO keyless_ratelimit (key, tokens, last_ns, full_ns) VALUES ($1, $2, $3, $3)
			ON CONFLICT (key) DO NOTHING`, []byte(key), burst, now.UnixNano()); err != nil {
			return err
		}
		var tokens float64
		var lastNs int64
		if err := tx.QueryRow(ctx, `SELECT tokens, last_ns FROM keyless_ratelimit WHERE key = $1 FOR UPDATE`,
			[]byte(key)).Scan(&tokens, &lastNs); err != nil {
			return err
		}
		last := time.Unix(0, lastNs)
		if el := now.Sub(last); el > 0 {
			tokens = math.Min(burst, tokens+el.Seconds()*l.Rate)
			last = now
		}
		res = ratelimit.Result{Limit: int(burst)}
		if tokens >= 1 {
			tokens--
			res.Allowed = true
		} else {
			res.RetryAfter = secs((1 - tokens) / l.Rate)
		}
		res.Remaining = int(math.Floor(tokens))
		res.Reset = secs((burst - tokens) / l.Rate)
		_, err := tx.Exec(ctx, `UPDATE keyless_ratelimit SET tokens = $2, last_ns = $3, full_ns = $4 WHERE key = $1`,
			[]byte(key), tokens, last.UnixNano(), now.Add(res.Reset).UnixNano())
		return err
	})
	return res, err
}

func secs(s float64) time.Duration {
	return time.Duration(math.Ceil(s * float64(time.Second)))
}

// sweepRateLimits deletes up to SweepBatch buckets that are full again
// (they carry no state) in tx.
func sweepRateLimits(ctx context.Context, tx pgx.Tx, now time.Time) (int, error) {
	ct, err := tx.Exec(ctx, `DELETE FROM keyless_ratelimit WHERE ctid IN (
		SELECT ctid FROM keyless_ratelimit WHERE full_ns <= $1 LIMIT $2)`, now.UnixNano(), SweepBatch)
	return int(ct.RowsAffected()), err
}
