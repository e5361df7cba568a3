package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"time"

	"github.com/redis/go-redis/v9"
)

// ErrExists is returned by PutOnce for an id already held.
var ErrExists = errors.New("redisstore: id already in use")

func (s *Store) onceKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return s.prefix + "once:" + base64.RawURLEncoding.EncodeToString(h[:])
}

// PutOnce stores a single-use value (a WebSocket ticket,
// docs/security.md#d10) under id until until, for [Store.TakeOnce] at any replica.
// An id already held is refused with ErrExists, never overwritten.
//
// The proxy's TicketStore is a thin adapter: Put encodes the Ticket and
// calls PutOnce; Take calls TakeOnce and decodes.
func (s *Store) PutOnce(ctx context.Context, id string, value []byte, until time.Time) error {
	ok, err := s.c.SetArgs(ctx, s.onceKey(id), value, redis.SetArgs{Mode: "NX", ExpireAt: time.UnixMilli(ceilMilli(until))}).Result()
	if errors.Is(err, redis.Nil) {
		return ErrExists
	}
	if err != nil {
		return wrap("put once", err)
	}
	if ok != "OK" {
		return ErrExists
	}
	return nil
}

// TakeOnce removes and returns the value under id in one atomic GETDEL:
// of two replicas taking the same id, one gets it. found is false for an
// unknown, expired or already taken id.
func (s *Store) TakeOnce(ctx context.Context, id string) (value []byte, found bool, err error) {
	v, err := s.c.GetDel(ctx, s.onceKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrap("take once", err)
	}
	return v, true, nil
}
