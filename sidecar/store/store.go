// Package store defines the state keyless shares between requests and, in a
// deployment with several replicas, between processes: the DPoP jti replay
// cache and revocations. Implementations live in sub-packages (memstore for
// one process; others for shared stores) and all pass the conformance suite
// in storetest.
//
// Every method fails closed: an error means "could not tell", and callers
// refuse the request (503), never let it through.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
)

// ErrFull is returned by a bounded store that would have to drop a live
// entry to take a new one. It refuses instead (docs/security.md#d3).
var ErrFull = errors.New("store: full")

// Replay is the jti replay cache: dpop.ReplayCache. Use returns
// dpop.ErrReplay for a pair already recorded, ErrFull when bounded and full.
type Replay = dpop.ReplayCache

// Kind is what a revocation applies to.
type Kind string

// Revocation kinds.
const (
	KindLease  Kind = "lease"  // one lease id
	KindJTI    Kind = "jti"    // one token's jti
	KindFamily Kind = "family" // a refresh-token family / grant
	KindSub    Kind = "sub"    // every token of a subject
	KindClient Kind = "client" // every token of an app
	KindJKT    Kind = "jkt"    // every token bound to a key
)

// SubjectValue is the value of a KindSub revocation for subject sub of
// the issuer named idp: sub itself for keyless's own issuer (idp ""), and
// idp, U+001F, sub for an external issuer, so that revoking the external
// "alice" of one issuer never touches the local "alice" or another
// issuer's (docs/identity-providers.md, "Subjects are namespaced").
func SubjectValue(idp, sub string) string {
	if idp == "" {
		return sub
	}
	return idp + "\x1f" + sub
}

// Revocation names one revoked thing.
type Revocation struct {
	Kind  Kind
	Value string
}

// Revocations records revocations until they no longer matter (the longest
// lifetime of a token they could apply to).
type Revocations interface {
	Revoke(ctx context.Context, r Revocation, until time.Time) error
	// AnyRevoked reports whether any of rs is revoked now.
	AnyRevoked(ctx context.Context, rs ...Revocation) (bool, error)
}

// RevocationEntry is one live revocation and its expiry, as a durable store
// lists them to re-seed a shared one.
type RevocationEntry struct {
	Revocation Revocation
	Until      time.Time
}
