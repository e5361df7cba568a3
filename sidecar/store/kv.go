package store

import "context"

// KV is a transactional key-value store for state that must outlive a
// request and, in the embedded default, a restart: device codes,
// refresh-token families, signing keys. Keys and values are opaque bytes
// grouped in named buckets.
//
// Update's writes are durable when it returns nil: a server may say "done"
// only after that, so no data is lost on a crash. An error from fn
// discards every write of the transaction, so nothing is half-written.
type KV interface {
	Update(ctx context.Context, fn func(Tx) error) error
	View(ctx context.Context, fn func(Tx) error) error
}

// Tx is one KV transaction. Values returned by Get are copies the caller
// may keep. Put and Delete fail inside View.
type Tx interface {
	// Get returns the value, or nil when the key or bucket does not exist.
	Get(bucket, key string) []byte
	Put(bucket, key string, value []byte) error
	// Delete removes a key; a missing key is not an error.
	Delete(bucket, key string) error
	// ForEach calls fn for every key of the bucket in key order; fn must
	// not modify the bucket.
	ForEach(bucket string, fn func(key string, value []byte) error) error
}
