package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// Expiry indexes. A device authorization used to sweep every stored code
// inside its own write transaction, so each request got slower as codes
// piled up. Now every record is also filed under its expiry time, and a
// background sweep ([Server.RunSweeps]) walks the index from its oldest
// end, in bounded batches, touching only what is due.
//
// Index keys are 16 hex digits of the due time in Unix nanoseconds followed
// by the record's key, so key order is time order.
const (
	// bucketDeviceLive: due = the code's ExpiresAt; value = user code.
	// Its entries are the pending (unexpired) codes, counted in
	// bucketMeta/metaLiveCodes for the cap.
	bucketDeviceLive = "device_live"
	// bucketDevicePurge: due = ExpiresAt + deviceRetention; value = user
	// code. When due, the record and its user code are deleted.
	bucketDevicePurge = "device_purge"
	bucketMeta        = "meta"
	metaLiveCodes     = "device_live_count"
	metaIndexVersion  = "device_index"
)

// deviceRetention is how long an expired device code's record is kept:
// a late poll gets expired_token rather than invalid_grant, and reuse of a
// redeemed code still revokes what it produced.
const deviceRetention = time.Hour

// sweepBatch bounds the records one sweep transaction deletes, so a sweep
// never holds the write lock for long.
const sweepBatch = 500

// SweepStats counts what one [Server.Sweep] deleted.
type SweepStats struct {
	DeviceCodes int // device authorization records
}

func indexKey(due time.Time, key string) string {
	return fmt.Sprintf("%016x", uint64(due.UnixNano())) + key
}

func indexDue(k string) (time.Time, string, bool) {
	if len(k) < 16 {
		return time.Time{}, "", false
	}
	n, err := strconv.ParseUint(k[:16], 16, 64)
	if err != nil {
		return time.Time{}, "", false
	}
	return time.Unix(0, int64(n)), k[16:], true
}

var errStop = errors.New("authserver: stop iteration")

// due returns up to n index entries of bucket due at or before now, oldest
// first (index key -> value).
func due(tx store.Tx, bucket string, now time.Time, n int) ([][2]string, error) {
	var out [][2]string
	err := tx.ForEach(bucket, func(k string, v []byte) error {
		t, _, ok := indexDue(k)
		if ok && t.After(now) {
			return errStop
		}
		out = append(out, [2]string{k, string(v)})
		if len(out) >= n {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return out, nil
}

func liveCount(tx store.Tx) int {
	n, _ := strconv.Atoi(string(tx.Get(bucketMeta, metaLiveCodes)))
	return n
}

func setLiveCount(tx store.Tx, n int) error {
	return tx.Put(bucketMeta, metaLiveCodes, []byte(strconv.Itoa(max(n, 0))))
}

// indexDevice files a new device grant under its expiry and counts it.
func indexDevice(tx store.Tx, h string, g *deviceGrant) error {
	if err := tx.Put(bucketDeviceLive, indexKey(g.ExpiresAt, h), []byte(g.UserCode)); err != nil {
		return err
	}
	return setLiveCount(tx, liveCount(tx)+1)
}

// Sweep deletes what has outlived its use, in bounded batches, each in its
// own transaction: device codes past their retention. It returns when
// nothing more is due or ctx ends.
func (s *Server) Sweep(ctx context.Context) (SweepStats, error) {
	var st SweepStats
	for ctx.Err() == nil {
		n, more, err := s.sweepDeviceBatch(ctx, s.now())
		st.DeviceCodes += n
		if err != nil {
			return st, err
		}
		if !more {
			return st, s.sweepBudgets(ctx, s.now())
		}
	}
	return st, ctx.Err()
}

// sweepBudgets deletes the shared failure counts of ended windows
// (bucketBudgets), in batches of sweepBatch.
func (s *Server) sweepBudgets(ctx context.Context, now time.Time) error {
	for ctx.Err() == nil {
		n := 0
		err := s.db.Update(ctx, func(tx store.Tx) error {
			ended, err := due(tx, bucketBudgets, now, sweepBatch)
			if err != nil {
				return err
			}
			n = len(ended)
			for _, e := range ended {
				if err := tx.Delete(bucketBudgets, e[0]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || n < sweepBatch {
			return err
		}
	}
	return ctx.Err()
}

// sweepDeviceBatch moves expired codes from the live index to the purge
// index (they stop counting against the cap), and deletes the records
// whose retention has passed. more reports a full batch.
func (s *Server) sweepDeviceBatch(ctx context.Context, now time.Time) (deleted int, more bool, err error) {
	err = s.db.Update(ctx, func(tx store.Tx) error {
		expired, err := due(tx, bucketDeviceLive, now, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range expired {
			t, h, _ := indexDue(e[0])
			if err := tx.Delete(bucketDeviceLive, e[0]); err != nil {
				return err
			}
			if err := tx.Put(bucketDevicePurge, indexKey(t.Add(deviceRetention), h), []byte(e[1])); err != nil {
				return err
			}
		}
		if len(expired) > 0 {
			if err := setLiveCount(tx, liveCount(tx)-len(expired)); err != nil {
				return err
			}
		}
		dead, err := due(tx, bucketDevicePurge, now, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range dead {
			_, h, _ := indexDue(e[0])
			if err := tx.Delete(bucketDevice, h); err != nil {
				return err
			}
			if string(tx.Get(bucketUserCode, e[1])) == h {
				if err := tx.Delete(bucketUserCode, e[1]); err != nil {
					return err
				}
			}
			if err := tx.Delete(bucketDevicePurge, e[0]); err != nil {
				return err
			}
		}
		deleted = len(dead)
		more = len(expired) == sweepBatch || len(dead) == sweepBatch
		return nil
	})
	return deleted, more, err
}

// indexExisting files the device records of a database written before the
// expiry index existed, once: afterwards nothing scans them again.
func (s *Server) indexExisting(ctx context.Context) error {
	return s.db.Update(ctx, func(tx store.Tx) error {
		if tx.Get(bucketMeta, metaIndexVersion) != nil {
			return nil
		}
		now := s.now()
		live := 0
		var puts [][3]string
		err := tx.ForEach(bucketDevice, func(h string, v []byte) error {
			var g deviceGrant
			if err := json.Unmarshal(v, &g); err != nil {
				// Unreadable: purge it with the next sweep.
				puts = append(puts, [3]string{bucketDevicePurge, indexKey(now, h), ""})
				return nil
			}
			if now.Before(g.ExpiresAt) {
				live++
				puts = append(puts, [3]string{bucketDeviceLive, indexKey(g.ExpiresAt, h), g.UserCode})
			} else {
				puts = append(puts, [3]string{bucketDevicePurge, indexKey(g.ExpiresAt.Add(deviceRetention), h), g.UserCode})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, p := range puts {
			if err := tx.Put(p[0], p[1], []byte(p[2])); err != nil {
				return err
			}
		}
		if err := setLiveCount(tx, live); err != nil {
			return err
		}
		return tx.Put(bucketMeta, metaIndexVersion, []byte("1"))
	})
}

// RunSweeps calls [Server.Sweep] every interval (zero means one minute)
// until ctx ends; failures are logged and retried at the next tick. `keyless
// dev` and `keyless serve` run it beside the server.
func (s *Server) RunSweeps(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	s.sweepLoop(ctx, t.C)
}

func (s *Server) sweepLoop(ctx context.Context, tick <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			if st, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "sweep failed", "err", err)
			} else if st.DeviceCodes > 0 {
				s.log.DebugContext(ctx, "sweep", "device_codes", st.DeviceCodes)
			}
		}
	}
}
