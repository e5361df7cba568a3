package authserver

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// retryAfterUnavailable is the Retry-After of every 503: storage that
// failed (a full disk, a store that cannot answer) usually recovers in
// seconds, or needs an operator.
const retryAfterUnavailable = "5"

// StorageError marks a failure of the server's storage: the database could
// not read or write (a full disk, a lost connection). Every endpoint
// answers it alike, through [AsError]: 503 temporarily_unavailable with
// Retry-After, never 500, and never a pass (RFC 6749 section 5.2; RFC 9110
// section 15.6.4; docs/security.md).
type StorageError struct{ Err error }

func (e *StorageError) Error() string { return "authserver: storage: " + e.Err.Error() }
func (e *StorageError) Unwrap() error { return e.Err }

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

// unavailableError is the one answer to a storage failure.
func unavailableError(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Msg: "storage is unavailable; retry later", Err: err,
		Header: http.Header{"Retry-After": {retryAfterUnavailable}}}
}
