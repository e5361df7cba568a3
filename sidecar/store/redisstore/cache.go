package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// cache is a replica's copy of the revocation set, kept by [Store.watch].
// It answers only while it is provably complete:
//
//   - synced: a full read (ZRANGEBYSCORE) has completed since the current
//     subscription was confirmed. A revocation written before the read is
//     in it; one written after the subscription is delivered as a message
//     (Redis publishes in the same script that writes). Messages are
//     applied in order after the read, merging by the later until.
//   - acked: the watcher pings on the subscribed connection with its send
//     time as payload; Redis answers pings in order with messages, so a
//     pong for a ping sent at p proves every revocation completed before p
//     has been applied. The cache answers only while p is within MaxStale
//     of now. A silent network failure therefore stops the cache within
//     MaxStale and AnyRevoked asks Redis (and fails) instead.
//
// Any receive error or reconnect clears synced: after a reconnect go-redis
// resubscribes, the watcher sees the confirmation and reads the set again,
// so no revocation is missed while a replica was disconnected.
type cache struct {
	mu     sync.RWMutex
	m      map[string]int64 // member -> until, Unix ms
	seeded bool
	synced bool
	acked  int64 // send time (Unix ns) of the latest answered ping since sync
}

func newCache() *cache { return &cache{m: make(map[string]int64)} }

// CacheReady reports whether AnyRevoked would now answer from the local
// cache, without a round trip: for metrics and tests. False with NoCache.
func (s *Store) CacheReady() bool {
	if s.cache == nil {
		return false
	}
	_, ok := s.cache.lookup(s.now(), s.opts.MaxStale, s.opts.AllowUnseeded, nil)
	return ok
}

// lookup answers from the cache; ok is false when the cache cannot answer.
// now is the store's clock, for expiries; staleness is measured on the
// wall clock, which stamps the pings.
func (c *cache) lookup(now time.Time, maxStale time.Duration, allowUnseeded bool, rs []store.Revocation) (revoked, ok bool) {
	wall := time.Now().UnixNano()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.synced || (!c.seeded && !allowUnseeded) || wall-c.acked > int64(maxStale) {
		return false, false
	}
	nowMs := now.UnixMilli()
	for _, r := range rs {
		if u, found := c.m[member(r)]; found && store.Applies(r, u, nowMs) {
			return true, true
		}
	}
	return false, true
}

func (c *cache) add(m string, until int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until > c.m[m] {
		c.m[m] = until
	}
}

func (c *cache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.synced = false
	c.acked = 0
}

// replace installs a full read. Entries added locally since the read
// started are in the read, or their messages follow.
func (c *cache) replace(m map[string]int64, seeded bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m, c.seeded, c.synced = m, seeded, true
}

func (c *cache) isSynced() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.synced
}

func (c *cache) ack(sent int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.synced && sent > c.acked {
		c.acked = sent
	}
}

func (c *cache) prune(nowMs int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, u := range c.m {
		if u <= nowMs {
			delete(c.m, k)
		}
	}
}

// watch keeps s.cache in sync until ctx is done.
func (s *Store) watch(ctx context.Context) {
	ps := s.c.Subscribe(ctx, s.revChannel)
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { ps.Close() }) // unblocks a receive
	defer stop()

	every := s.opts.MaxStale / 4
	var pinger sync.WaitGroup
	pinger.Add(1)
	go func() {
		defer pinger.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		prune := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// A failed ping surfaces as a receive error (or no pong),
			// which the receive loop handles.
			_ = ps.Ping(ctx, strconv.FormatInt(time.Now().UnixNano(), 10))
			if time.Since(prune) > 10*time.Second {
				s.cache.prune(s.now().UnixMilli())
				prune = time.Now()
			}
		}
	}()
	defer pinger.Wait()

	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, s.opts.MaxStale)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				// No pong within MaxStale: lookup already refuses by
				// age; keep the connection and wait for it.
				continue
			}
			// A broken connection: go-redis reconnects and resubscribes
			// on the next receive. Until the confirmation and a full
			// read, the cache does not answer.
			s.cache.invalidate()
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				s.cache.invalidate()
				s.resync(ctx)
			}
		case *redis.Message:
			if m.Payload == syncMessage {
				s.resync(ctx)
				continue
			}
			ms, mem, ok := strings.Cut(m.Payload, " ")
			until, err := strconv.ParseInt(ms, 10, 64)
			if !ok || err != nil {
				continue // not ours
			}
			s.cache.add(mem, until)
		case *redis.Pong:
			// A full read that failed is retried here: the subscription
			// on this connection is confirmed, so a read now plus the
			// messages after it is complete.
			if !s.cache.isSynced() {
				s.resync(ctx)
			}
			if sent, err := strconv.ParseInt(m.Payload, 10, 64); err == nil {
				s.cache.ack(sent)
			}
		}
	}
}

// resync reads the whole set into the cache; on failure the cache stays
// invalid and the next reconnect or sync message tries again.
//
// It first checks that Redis still has the replay script: a reconnect may
// follow a restart from an older file or a failover, which keep the seeded
// marker while losing the last revocations (see checkRestart). The
// cache must not answer from such a set before the loss is recorded.
func (s *Store) resync(ctx context.Context) {
	if s.checkRestart(ctx) != nil {
		s.cache.invalidate()
		return
	}
	m, seeded, err := s.readAll(ctx)
	if err != nil {
		s.cache.invalidate()
		return
	}
	s.cache.replace(m, seeded)
}
