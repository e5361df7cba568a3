package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
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
	// bucketFamilyExpiry: due = the family's ExpiresAt + grantRetention;
	// value = "". When due, the family is deleted.
	bucketFamilyExpiry = "family_expiry"
	// bucketRefreshExpiry: due = its family's ExpiresAt + grantRetention;
	// value = family id. When due, the refresh token's record is deleted.
	bucketRefreshExpiry = "refresh_expiry"
	metaGrantIndex      = "grant_index"
)

// grantRetention is how long a family (and its refresh tokens) is kept
// past its absolute expiry: as long as an access token issued from it can
// live, so revoking the grant still reaches its access tokens.
const grantRetention = token.MaxTTL

// deviceRetention is how long an expired device code's record is kept:
// a late poll gets expired_token rather than invalid_grant, and reuse of a
// redeemed code still revokes what it produced.
const deviceRetention = time.Hour

// sweepBatch bounds the records one sweep transaction deletes, so a sweep
// never holds the write lock for long.
const sweepBatch = 500

// SweepStats counts what one [Server.Sweep] deleted.
type SweepStats struct {
	DeviceCodes   int // device authorization records
	Families      int // refresh-token families (grants)
	RefreshTokens int // refresh token records
	Other         int // records deleted by sweeps added with AddSweep
}

// AddSweep adds a sweep that [Server.Sweep] runs after its own: the
// vending service's renewal tokens live in the same database. fn returns
// how many records it deleted.
func (s *Server) AddSweep(fn func(context.Context) (int, error)) {
	s.sweepsMu.Lock()
	defer s.sweepsMu.Unlock()
	s.sweeps = append(s.sweeps, fn)
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
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		n, more, err := s.sweepDeviceBatch(ctx, s.now())
		st.DeviceCodes += n
		if err != nil {
			return st, err
		}
		if !more {
			break
		}
	}
	for _, ix := range []struct {
		bucket, target string
		n              *int
	}{{bucketRefreshExpiry, bucketRefresh, &st.RefreshTokens}, {bucketFamilyExpiry, bucketFamily, &st.Families}} {
		for {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			n, more, err := s.sweepIndexBatch(ctx, ix.bucket, ix.target, s.now())
			*ix.n += n
			if err != nil {
				return st, err
			}
			if !more {
				break
			}
		}
	}
	s.sweepsMu.Lock()
	extra := slices.Clone(s.sweeps)
	s.sweepsMu.Unlock()
	for _, fn := range extra {
		n, err := fn(ctx)
		st.Other += n
		if err != nil {
			return st, err
		}
	}
	if err := s.sweepBudgets(ctx, s.now()); err != nil {
		return st, err
	}
	return st, nil
}

// sweepIndexBatch deletes up to sweepBatch records of target whose entry
// in the expiry index is due, with their index entries.
func (s *Server) sweepIndexBatch(ctx context.Context, index, target string, now time.Time) (deleted int, more bool, err error) {
	err = s.db.Update(ctx, func(tx store.Tx) error {
		dead, err := due(tx, index, now, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range dead {
			_, key, _ := indexDue(e[0])
			if target == bucketFamily {
				if err := deleteLineage(tx, key); err != nil {
					return err
				}
			}
			if err := tx.Delete(target, key); err != nil {
				return err
			}
			if err := tx.Delete(index, e[0]); err != nil {
				return err
			}
		}
		deleted, more = len(dead), len(dead) == sweepBatch
		return nil
	})
	return deleted, more, err
}

// deleteLineage deletes the lineage entries (access token jti -> family)
// the family still holds: those of its last access tokens, which no later
// refresh pruned. Its tokens expired long before the family is swept. A
// record that does not decode is swept without them (the sweep must not
// stall on it).
func deleteLineage(tx store.Tx, famID string) error {
	var f family
	if found, err := getJSON(tx, bucketFamily, famID, &f); err != nil || !found {
		return nil
	}
	for _, a := range f.Access {
		if err := tx.Delete(bucketLineage, a.JTI); err != nil {
			return err
		}
	}
	return nil
}

// indexFamily files a new family under its expiry.
func indexFamily(tx store.Tx, famID string, f *family) error {
	return tx.Put(bucketFamilyExpiry, indexKey(f.ExpiresAt.Add(grantRetention), famID), []byte{})
}

// indexRefresh files a new refresh token under its family's expiry.
func indexRefresh(tx store.Tx, h, famID string, f *family) error {
	return tx.Put(bucketRefreshExpiry, indexKey(f.ExpiresAt.Add(grantRetention), h), []byte(famID))
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

// indexExistingGrants files the families and refresh tokens of a database
// written before their expiry indexes existed, once.
func (s *Server) indexExistingGrants(ctx context.Context) error {
	return s.db.Update(ctx, func(tx store.Tx) error {
		if tx.Get(bucketMeta, metaGrantIndex) != nil {
			return nil
		}
		now := s.now()
		exp := map[string]time.Time{}
		var puts [][3]string
		err := tx.ForEach(bucketFamily, func(id string, v []byte) error {
			var f family
			due := now
			if json.Unmarshal(v, &f) == nil {
				due = f.ExpiresAt.Add(grantRetention)
			}
			exp[id] = due
			puts = append(puts, [3]string{bucketFamilyExpiry, indexKey(due, id), ""})
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.ForEach(bucketRefresh, func(h string, v []byte) error {
			var r refreshToken
			due := now
			if json.Unmarshal(v, &r) == nil {
				if d, ok := exp[r.FamilyID]; ok {
					due = d
				}
			}
			puts = append(puts, [3]string{bucketRefreshExpiry, indexKey(due, h), r.FamilyID})
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
		return tx.Put(bucketMeta, metaGrantIndex, []byte("1"))
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
			} else if st != (SweepStats{}) {
				s.log.DebugContext(ctx, "sweep", "device_codes", st.DeviceCodes, "families", st.Families,
					"refresh_tokens", st.RefreshTokens, "other", st.Other)
			}
		}
	}
}
