package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// The revocation log (docs/revocation.md) lives in two buckets written in
// one transaction: revlog, the ordered log (8-byte big-endian sequence ->
// JSON logRecord), and revocations, the current state it folds to
// ("kind\x00value" -> 8-byte big-endian expiry in Unix nanoseconds), which
// answers lookups without reading the log.
const (
	revBucket = "revocations"
	logBucket = "revlog"
	// logRetention is how long a log entry is kept after it was recorded
	// even when it no longer matters, so that a follower that was away for
	// less than that catches up from the log, lifted blocks included;
	// one away longer loads a snapshot.
	logRetention = 24 * time.Hour
)

type logRecord struct {
	Kind  store.Kind `json:"kind"`
	Value string     `json:"value"`
	Until int64      `json:"until"` // Unix nanoseconds
	Reset bool       `json:"reset,omitempty"`
	At    int64      `json:"at"`
}

func revKey(r store.Revocation) string { return string(r.Kind) + "\x00" + r.Value }

// seqKey is n as 8 big-endian bytes: log keys sort by sequence, and
// expiries are stored the same way.
func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

func nanos(b []byte) (int64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), true
}

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
	if err := ctx.Err(); err != nil {
		return err
	}
	now := d.now()
	changed := false
	defer func() {
		if fn := d.onWrite.Load(); changed && fn != nil {
			(*fn)()
		}
	}()
	return d.db.Update(func(tx *bolt.Tx) error {
		revs, err := tx.CreateBucketIfNotExists([]byte(revBucket))
		if err != nil {
			return fmt.Errorf("boltstore: %w", err)
		}
		log, err := tx.CreateBucketIfNotExists([]byte(logBucket))
		if err != nil {
			return fmt.Errorf("boltstore: %w", err)
		}
		if !reset && until.UnixNano() <= now.UnixNano() {
			return nil // already over: nothing to record
		}
		k := []byte(revKey(r))
		old, had := nanos(revs.Get(k))
		if had && (old == until.UnixNano() || (!reset && old > until.UnixNano())) {
			return nil
		}
		if err := revs.Put(k, seqKey(uint64(until.UnixNano()))); err != nil {
			return err
		}
		seq, err := log.NextSequence()
		if err != nil {
			return err
		}
		b, err := json.Marshal(logRecord{Kind: r.Kind, Value: r.Value, Until: until.UnixNano(), Reset: reset, At: now.UnixNano()})
		if err != nil {
			return err
		}
		if err := log.Put(seqKey(seq), b); err != nil {
			return err
		}
		if err := sweep(revs, log, now); err != nil {
			return err
		}
		changed = true // committed once Update returns nil
		return nil
	})
}

// sweep drops expired revocations, and log entries that are both expired
// and older than logRetention. The log's sequence counter is kept, so
// numbers are never reused.
func sweep(revs, log *bolt.Bucket, now time.Time) error {
	var dead [][]byte
	_ = revs.ForEach(func(k, v []byte) error {
		if exp, ok := nanos(v); !ok || exp <= now.UnixNano() {
			dead = append(dead, append([]byte(nil), k...))
		}
		return nil
	})
	for _, k := range dead {
		if err := revs.Delete(k); err != nil {
			return err
		}
	}
	dead = dead[:0]
	c := log.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var rec logRecord
		if json.Unmarshal(v, &rec) == nil && (rec.Until > now.UnixNano() || rec.At > now.Add(-logRetention).UnixNano()) {
			break // keep this one and everything after it: no holes
		}
		dead = append(dead, append([]byte(nil), k...))
	}
	for _, k := range dead {
		if err := log.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Since implements [store.Log].
func (d *DB) Since(ctx context.Context, after uint64, max int) ([]store.LogEntry, uint64, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, 0, err
	}
	var out []store.LogEntry
	var first, last uint64
	err := d.db.View(func(tx *bolt.Tx) error {
		log := tx.Bucket([]byte(logBucket))
		if log == nil {
			return nil
		}
		last = log.Sequence()
		c := log.Cursor()
		if k, _ := c.First(); k != nil {
			first = binary.BigEndian.Uint64(k)
		} else {
			first = last + 1
		}
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			var rec logRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("boltstore: revocation log entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, store.LogEntry{
				Seq:        binary.BigEndian.Uint64(k),
				Revocation: store.Revocation{Kind: rec.Kind, Value: rec.Value},
				Until:      time.Unix(0, rec.Until), Reset: rec.Reset, At: time.Unix(0, rec.At),
			})
		}
		return nil
	})
	return out, first, last, err
}

// Snapshot implements [store.Log].
func (d *DB) Snapshot(ctx context.Context) ([]store.RevocationEntry, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	now := d.now().UnixNano()
	var out []store.RevocationEntry
	var last uint64
	err := d.db.View(func(tx *bolt.Tx) error {
		if log := tx.Bucket([]byte(logBucket)); log != nil {
			last = log.Sequence()
		}
		revs := tx.Bucket([]byte(revBucket))
		if revs == nil {
			return nil
		}
		return revs.ForEach(func(k, v []byte) error {
			kind, value, ok := strings.Cut(string(k), "\x00")
			if exp, vok := nanos(v); ok && vok && exp > now {
				out = append(out, store.RevocationEntry{
					Revocation: store.Revocation{Kind: store.Kind(kind), Value: value},
					Until:      time.Unix(0, exp),
				})
			}
			return nil
		})
	})
	return out, last, err
}

// ListRevocations returns every live revocation: the durable list an
// issuer re-seeds a shared store (Redis) from after that store lost its
// data, so nothing revoked comes back.
func (d *DB) ListRevocations(ctx context.Context) ([]store.RevocationEntry, error) {
	out, _, err := d.Snapshot(ctx)
	return out, err
}

// Expiry returns the recorded expiry of a revocation, zero when there is
// none live: the issuer reads a watermark's cutoff with it (a block is a
// cutoff in the future) to say why it refuses.
func (d *DB) Expiry(ctx context.Context, r store.Revocation) (time.Time, error) {
	var exp int64
	err := d.View(ctx, func(t store.Tx) error {
		exp, _ = nanos(t.Get(revBucket, revKey(r.Key())))
		return nil
	})
	if err != nil || exp <= d.now().UnixNano() {
		return time.Time{}, err
	}
	return time.Unix(0, exp), nil
}

// AnyRevoked implements [store.Revocations].
func (d *DB) AnyRevoked(ctx context.Context, rs ...store.Revocation) (bool, error) {
	now := d.now().UnixMilli()
	found := false
	err := d.View(ctx, func(t store.Tx) error {
		for _, r := range rs {
			if exp, ok := nanos(t.Get(revBucket, revKey(r.Key()))); ok && store.Applies(r, time.Unix(0, exp).UnixMilli(), now) {
				found = true
				return nil
			}
		}
		return nil
	})
	return found, err
}
