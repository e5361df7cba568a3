// Package nonce issues and checks DPoP server nonces (RFC 9449 section 8)
// without per-nonce state: a nonce is a rotation epoch and an HMAC of it
// under a key every replica shares, so any replica accepts any other's
// nonce. The current and the previous epoch's nonces are accepted, so a
// client never fails at a rotation boundary.
//
// Use [New] with a [KeySource]; [*Source] implements dpop.NonceChecker.
//
// https://www.rfc-editor.org/rfc/rfc9449#section-8
package nonce

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
)

// KeySource supplies the HMAC key shared by every replica (at least 32
// bytes). A shared store implements it for multi-replica deployments.
type KeySource interface {
	NonceKey(ctx context.Context) ([]byte, error)
}

// StaticKey is an in-memory [KeySource].
type StaticKey []byte

// NonceKey implements KeySource.
func (k StaticKey) NonceKey(context.Context) ([]byte, error) { return k, nil }

// RandomKey returns a fresh 32-byte key: right for a single replica.
func RandomKey() StaticKey {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// DefaultPeriod is how long one nonce is current.
const DefaultPeriod = 5 * time.Minute

// ErrStale is returned for a nonce that is malformed, forged, or older than
// the previous period.
var ErrStale = errors.New("nonce: not current")

// Source issues and checks nonces.
type Source struct {
	key    []byte
	period int64 // nanoseconds
	now    func() time.Time
	cur    atomic.Pointer[issued]
}

type issued struct {
	epoch int64
	nonce string
}

var _ dpop.NonceChecker = (*Source)(nil)

// New returns a Source using the key from ks. period zero means
// DefaultPeriod; now nil means time.Now.
func New(ctx context.Context, ks KeySource, period time.Duration, now func() time.Time) (*Source, error) {
	key, err := ks.NonceKey(ctx)
	if err != nil {
		return nil, err
	}
	if len(key) < 32 {
		return nil, errors.New("nonce: key must be at least 32 bytes")
	}
	if period <= 0 {
		period = DefaultPeriod
	}
	if now == nil {
		now = time.Now
	}
	return &Source{key: append([]byte(nil), key...), period: int64(period), now: now}, nil
}

const macLen = 16

// encodedLen is base64url(8-byte epoch || 16-byte MAC).
var encodedLen = base64.RawURLEncoding.EncodedLen(8 + macLen)

func (s *Source) epoch() int64 { return s.now().UnixNano() / s.period }

func (s *Source) mac(epoch int64) []byte {
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], uint64(epoch))
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("keyless dpop nonce v1"))
	m.Write(e[:])
	return m.Sum(nil)[:macLen]
}

// Current returns the nonce to send in DPoP-Nonce now.
func (s *Source) Current() string {
	e := s.epoch()
	if c := s.cur.Load(); c != nil && c.epoch == e {
		return c.nonce
	}
	var b [8 + macLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(e))
	copy(b[8:], s.mac(e))
	n := base64.RawURLEncoding.EncodeToString(b[:])
	s.cur.Store(&issued{epoch: e, nonce: n})
	return n
}

// CheckNonce implements dpop.NonceChecker: it accepts nonces of the current
// and the previous period.
func (s *Source) CheckNonce(n string) error {
	if len(n) != encodedLen {
		return ErrStale
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(n)
	if err != nil || len(b) != 8+macLen {
		return ErrStale
	}
	e := int64(binary.BigEndian.Uint64(b[:8]))
	now := s.epoch()
	if e != now && e != now-1 {
		return ErrStale
	}
	if !hmac.Equal(b[8:], s.mac(e)) {
		return ErrStale
	}
	return nil
}
