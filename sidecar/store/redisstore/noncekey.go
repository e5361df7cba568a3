package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// nonceKeyLen is the size of the generated server-nonce HMAC key.
const nonceKeyLen = 32

// NonceKey implements nonce.KeySource: one random key shared by every
// replica, created by whichever replica asks first (SET NX) and read by the
// others. It has no expiry. If Redis lost it, a replica that had read it
// offers the same key again, so replicas that keep running keep agreeing;
// a replica started in between may have created a new one, and clients
// then retry once on use_dpop_nonce. The proxy reads the key once, at
// start (nonce.New).
func (s *Store) NonceKey(ctx context.Context) ([]byte, error) {
	s.nonceMu.Lock()
	offer := s.lastNonce
	s.nonceMu.Unlock()
	if offer == nil {
		offer = make([]byte, nonceKeyLen)
		if _, err := rand.Read(offer); err != nil {
			return nil, err
		}
	}
	var get *redis.StringCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, s.nonceKey, offer, 0)
		get = p.Get(ctx, s.nonceKey)
		return nil
	})
	if err != nil {
		return nil, wrap("nonce key", err)
	}
	key, err := get.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, wrap("nonce key", errors.New("key vanished after SET NX"))
	}
	if err != nil {
		return nil, wrap("nonce key", err)
	}
	if len(key) < nonceKeyLen {
		return nil, fmt.Errorf("redisstore: nonce key in Redis is %d bytes, want %d", len(key), nonceKeyLen)
	}
	s.nonceMu.Lock()
	s.lastNonce = key
	s.nonceMu.Unlock()
	return key, nil
}
