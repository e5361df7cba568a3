package authserver

import (
	"context"
	"errors"
	"time"

	"github.com/keyless-dev/keyless/sidecar/oauth"
	"github.com/keyless-dev/keyless/sidecar/store"
)

// StorageError marks a failure of the server's storage; every endpoint
// answers it alike, through [oauth.AsError]: 503 temporarily_unavailable
// with Retry-After (docs/security.md).
type StorageError = oauth.StorageError

// storageErr wraps err as a *StorageError unless it is nil or already a
// refusal (*Error) chosen inside the transaction.
func storageErr(err error) error {
	var e *Error
	var se *StorageError
	if err == nil || errors.As(err, &e) || errors.As(err, &se) {
		return err
	}
	return &StorageError{Err: err}
}

// guardedKV marks every failure of the wrapped KV as a *StorageError.
type guardedKV struct{ kv store.KV }

func (g guardedKV) Update(ctx context.Context, fn func(store.Tx) error) error {
	return storageErr(g.kv.Update(ctx, fn))
}

func (g guardedKV) View(ctx context.Context, fn func(store.Tx) error) error {
	return storageErr(g.kv.View(ctx, fn))
}

// guardedRevocations marks every failure of the wrapped store as a
// *StorageError.
type guardedRevocations struct{ r store.Revocations }

func (g guardedRevocations) Revoke(ctx context.Context, r store.Revocation, until time.Time) error {
	return storageErr(g.r.Revoke(ctx, r, until))
}

func (g guardedRevocations) AnyRevoked(ctx context.Context, rs ...store.Revocation) (bool, error) {
	ok, err := g.r.AnyRevoked(ctx, rs...)
	return ok, storageErr(err)
}
