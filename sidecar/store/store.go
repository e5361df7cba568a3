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
	KindFamily Kind = "family" // a lease family (its renewal tokens)
	KindLogin  Kind = "login"  // a login: the issuer's refresh-token family
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
//
// Lease, jti, family and login revocations end exactly what they name.
// Subject, client and key revocations are watermarks: they end what was
// issued to the subject, app or key before a cutoff, and whatever is
// issued afterwards works (docs/revocation.md). A watermark is recorded
// with Until = cutoff + [WatermarkHorizon] ([WatermarkUntil]); a cutoff in
// the future is a block: everything issued before it, new sign-ins
// included, is refused until then.
type Revocation struct {
	Kind  Kind
	Value string
	// IssuedAt, in a lookup of a watermark kind, is when the token (or the
	// lease family, or the login) was issued: the revocation applies only
	// when that is not after the cutoff ("everything issued up to now"). Zero matches any recorded watermark
	// (fail closed). Ignored for other kinds and when recording.
	IssuedAt time.Time
}

// Key is r without IssuedAt: what a store records and looks up.
func (r Revocation) Key() Revocation { return Revocation{Kind: r.Kind, Value: r.Value} }

// WatermarkHorizon is how long a watermark is remembered past its cutoff:
// longer than anything issued before the cutoff can live (a lease family's
// renewal limit, at most 7 days, plus a lease's lifetime and leeway).
const WatermarkHorizon = 8 * 24 * time.Hour

// Watermarks are the watermark lookups for something issued at to a
// subject, an app and (when not empty) a key.
func Watermarks(sub, client, jkt string, at time.Time) []Revocation {
	rs := []Revocation{{Kind: KindSub, Value: sub, IssuedAt: at}, {Kind: KindClient, Value: client, IssuedAt: at}}
	if jkt != "" {
		rs = append(rs, Revocation{Kind: KindJKT, Value: jkt, IssuedAt: at})
	}
	return rs
}

// IsWatermark reports whether revocations of kind k are watermarks.
func IsWatermark(k Kind) bool { return k == KindSub || k == KindClient || k == KindJKT }

// WatermarkUntil is the Until to record for a watermark with cutoff.
func WatermarkUntil(cutoff time.Time) time.Time { return cutoff.Add(WatermarkHorizon) }

// Cutoff is the cutoff of a recorded watermark that expires at until.
func Cutoff(until time.Time) time.Time { return until.Add(-WatermarkHorizon) }

// Applies reports whether a revocation recorded with expiry until (Unix
// milliseconds) revokes the lookup r at now (Unix milliseconds). Every
// store decides with this one function.
func Applies(r Revocation, untilMs, nowMs int64) bool {
	if untilMs <= nowMs {
		return false
	}
	if !IsWatermark(r.Kind) || r.IssuedAt.IsZero() {
		return true
	}
	return r.IssuedAt.UnixMilli() <= untilMs-WatermarkHorizon.Milliseconds()
}

// Revocations records revocations until they no longer matter (the longest
// lifetime of a token they could apply to).
type Revocations interface {
	Revoke(ctx context.Context, r Revocation, until time.Time) error
	// AnyRevoked reports whether any of rs is revoked now.
	AnyRevoked(ctx context.Context, rs ...Revocation) (bool, error)
}

// Resetter is implemented by stores that can set a revocation's expiry
// exactly, lowering it too: an operator lifting a block. Revoke never
// lowers an expiry, so that two writers cannot undo each other.
type Resetter interface {
	Reset(ctx context.Context, r Revocation, until time.Time) error
}

// RevocationEntry is one live revocation and its expiry, as a durable store
// lists them to re-seed a shared one.
type RevocationEntry struct {
	Revocation Revocation
	Until      time.Time
}

// LogEntry is one change in the issuer's revocation log.
type LogEntry struct {
	// Seq orders the log: 1, 2, 3, ... with no reuse.
	Seq        uint64
	Revocation Revocation
	Until      time.Time
	// Reset marks an entry that sets Until exactly, possibly lowering it
	// (an operator lifting a block); other entries only extend.
	Reset bool
	// At is when it was recorded.
	At time.Time
}

// Log is the issuer's durable, ordered revocation log: the source of truth
// that every shared copy (Redis, the proxies following the issuer, the
// edge) converges to by sequence number. boltstore implements it; another
// durable store (Postgres) can.
//
// A write is acknowledged only once it is durable in the log.
type Log interface {
	Revocations
	Resetter
	// Since returns, in order, up to max entries with Seq > after, and the
	// log's last sequence number. first is the oldest sequence number
	// still kept: a follower with after < first-1 missed entries that
	// were compacted away and must load [Log.Snapshot] instead.
	Since(ctx context.Context, after uint64, max int) (entries []LogEntry, first, last uint64, err error)
	// Snapshot returns every live revocation and the sequence number it
	// is current to.
	Snapshot(ctx context.Context) (entries []RevocationEntry, last uint64, err error)
}
