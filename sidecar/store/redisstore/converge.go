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

// seqPrefix names the member of the revocation set (score +inf, like the
// seeded marker) that records the issuer's log sequence number Redis
// holds: "!seq:<n>". Keeping it in the same key keeps every script on one
// key, as Redis Cluster needs.
const seqPrefix = "!seq:"

// applyScript applies log entries in order and records their sequence
// number, atomically: ARGV[1] now (ms), ARGV[2] channel, ARGV[3] sequence
// number, then (member, until ms, reset "0"/"1") triples. A plain entry
// only raises a score (ZADD GT) and is published to every replica; a
// reset sets it exactly (lifting a block) and makes every replica re-read
// the set, since caches only ever raise.
var applyScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local sync = false
for i = 4, #ARGV, 3 do
  local u = tonumber(ARGV[i+1])
  if ARGV[i+2] == '1' then
    if u > now then
      redis.call('ZADD', KEYS[1], u, ARGV[i])
    else
      redis.call('ZREM', KEYS[1], ARGV[i])
    end
    sync = true
  elseif u > now then
    redis.call('ZADD', KEYS[1], 'GT', u, ARGV[i])
    redis.call('PUBLISH', ARGV[2], ARGV[i+1] .. ' ' .. ARGV[i])
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local seq = tonumber(ARGV[3])
local cur = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '+inf', '+inf')) do
  if string.sub(m, 1, 5) == '` + seqPrefix + `' then
    local n = tonumber(string.sub(m, 6))
    if n > seq then cur = n else redis.call('ZREM', KEYS[1], m) end
  end
end
if cur < seq then
  redis.call('ZADD', KEYS[1], '+inf', '` + seqPrefix + `' .. ARGV[3])
end
if sync then
  redis.call('PUBLISH', ARGV[2], '` + syncMessage + `')
end
return 1
`)

// LogState reports whether the revocation set is seeded and the issuer's
// log sequence number it holds (0 when none was recorded).
func (s *Store) LogState(ctx context.Context) (seeded bool, seq uint64, err error) {
	ms, err := s.c.ZRangeByScore(ctx, s.revKey, &redis.ZRangeBy{Min: "+inf", Max: "+inf"}).Result()
	if err != nil {
		return false, 0, wrap("log state", err)
	}
	for _, m := range ms {
		if m == seededMember {
			seeded = true
		} else if n, ok := strings.CutPrefix(m, seqPrefix); ok {
			if v, err := strconv.ParseUint(n, 10, 64); err == nil && v > seq {
				seq = v
			}
		}
	}
	return seeded, seq, nil
}

// Apply applies log entries, in order, and records seq as the sequence
// number Redis holds.
func (s *Store) Apply(ctx context.Context, entries []store.LogEntry, seq uint64) error {
	args := make([]any, 0, 3+3*len(entries))
	args = append(args, s.now().UnixMilli(), s.revChannel, strconv.FormatUint(seq, 10))
	for _, e := range entries {
		reset := "0"
		if e.Reset {
			reset = "1"
		}
		args = append(args, member(e.Revocation), ceilMilli(e.Until), reset)
	}
	if err := applyScript.Run(ctx, s.c, []string{s.revKey}, args...).Err(); err != nil {
		return wrap("apply", err)
	}
	if s.cache != nil {
		for _, e := range entries {
			if e.Reset {
				s.cache.invalidate()
			} else {
				s.cache.add(member(e.Revocation), ceilMilli(e.Until))
			}
		}
	}
	return nil
}

// Converger keeps Redis equal to the issuer's durable revocation log, by
// itself, whatever happened to Redis: it compares the sequence number
// Redis holds with the log's at every tick and on every [Converger.Kick],
// applies what Redis lacks, and re-seeds it from a snapshot when Redis
// lost its data (or fell behind the log's compaction). A revocation made
// while Redis was stalled or unreachable reaches it, and every replica,
// as soon as it answers again (docs/revocation.md).
type Converger struct {
	// Log is the durable log; required.
	Log store.Log
	// Shared is the Redis store; required.
	Shared *Store
	// Interval between comparisons; zero means 250 ms.
	Interval time.Duration
	// OnErr receives failures (Redis down); nil drops them. Each is
	// retried at the next tick.
	OnErr func(error)

	once sync.Once
	kick chan struct{}
}

// batch bounds the entries of one Apply.
const batch = 500

func (c *Converger) init() { c.once.Do(func() { c.kick = make(chan struct{}, 1) }) }

// Kick asks for a comparison now (after a revocation that could not be
// written to Redis directly).
func (c *Converger) Kick() {
	c.init()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run compares until ctx is done.
func (c *Converger) Run(ctx context.Context) {
	c.init()
	iv := c.Interval
	if iv <= 0 {
		iv = 250 * time.Millisecond
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		if err := c.Step(ctx); err != nil && c.OnErr != nil && ctx.Err() == nil {
			c.OnErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
	}
}

// Step makes Redis current with the log once.
func (c *Converger) Step(ctx context.Context) error {
	seeded, at, err := c.Shared.LogState(ctx)
	if err != nil {
		return err
	}
	if !seeded {
		return c.reseed(ctx)
	}
	for {
		entries, first, last, err := c.Log.Since(ctx, at, batch)
		if err != nil {
			return err
		}
		if at >= last {
			return nil
		}
		if at+1 < first {
			return c.reseed(ctx) // compacted past what Redis holds
		}
		if len(entries) == 0 {
			return errors.New("redisstore: converge: the log returned no entries before its last")
		}
		next := entries[len(entries)-1].Seq
		if err := c.Shared.Apply(ctx, entries, next); err != nil {
			return err
		}
		at = next
	}
}

func (c *Converger) reseed(ctx context.Context) error {
	snap, last, err := c.Log.Snapshot(ctx)
	if err != nil {
		return err
	}
	es := make([]Entry, len(snap))
	for i, e := range snap {
		es[i] = Entry{Revocation: e.Revocation, Until: e.Until}
	}
	if err := c.Shared.Reseed(ctx, es); err != nil {
		return err
	}
	return c.Shared.Apply(ctx, nil, last)
}
