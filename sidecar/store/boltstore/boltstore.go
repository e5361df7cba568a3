// Package boltstore keeps keyless's embedded state in one bbolt file in the
// data directory: the [store.KV] of the authorization server (device codes,
// refresh-token families, signing keys) and [store.Revocations]. Every
// write is fsynced before Update returns, so a response that says something
// happened is never contradicted after a crash.
//
// bbolt locks the file: one process at a time. Open fails after
// Options.LockTimeout when another process (a running `keyless dev`) holds
// it.
package boltstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// FileName is the database file inside a data directory.
const FileName = "keyless.db"

// ErrLocked is returned by Open when another process holds the database.
var ErrLocked = errors.New("boltstore: database is in use by another process")

// Options configure [Open].
type Options struct {
	// LockTimeout is how long Open waits for the file lock; zero means 1 s.
	LockTimeout time.Duration
	// NoSync skips fsync. Only for tests and benchmarks that measure the
	// rest: it gives up the durability guarantee.
	NoSync bool
	// Now is the clock for revocation expiry; nil means time.Now.
	Now func() time.Time
}

// DB is an open store.
type DB struct {
	db      *bolt.DB
	now     func() time.Time
	onWrite atomic.Pointer[func()]
}

// OnRevocation sets fn to run after every change of the revocation log is
// committed: the issuer wakes the followers of its revocation feed with it.
func (d *DB) OnRevocation(fn func()) { d.onWrite.Store(&fn) }

var (
	_ store.KV  = (*DB)(nil)
	_ store.Log = (*DB)(nil)
)

// Open opens (creating if needed) the database file at path, mode 0600.
// The parent directory is created 0700 if missing.
func Open(path string, opts Options) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: %w", err)
	}
	to := opts.LockTimeout
	if to <= 0 {
		to = time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: to, NoSync: opts.NoSync})
	if errors.Is(err, bolterr.ErrTimeout) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: %w", err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &DB{db: db, now: now}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Update implements [store.KV].
func (d *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.db.Update(func(btx *bolt.Tx) error { return fn(tx{btx}) })
}

// View implements [store.KV].
func (d *DB) View(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.db.View(func(btx *bolt.Tx) error { return fn(tx{btx}) })
}

type tx struct{ t *bolt.Tx }

func (t tx) Get(bucket, key string) []byte {
	b := t.t.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil
	}
	// bbolt's slices are valid only inside the transaction.
	return append([]byte(nil), v...)
}

func (t tx) Put(bucket, key string, value []byte) error {
	b, err := t.t.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return fmt.Errorf("boltstore: %w", err)
	}
	return b.Put([]byte(key), value)
}

func (t tx) Delete(bucket, key string) error {
	b := t.t.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.Delete([]byte(key))
}

func (t tx) ForEach(bucket string, fn func(key string, value []byte) error) error {
	b := t.t.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
}
