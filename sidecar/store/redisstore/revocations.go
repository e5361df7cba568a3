package redisstore

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// ErrNotSeeded is returned by AnyRevoked (and Ready) while the revocation
// set has not been seeded from the issuer's durable list since Redis last
// lost its data: answering "not revoked" then could let a revoked token
// back in. The proxy answers 503 until the issuer calls [Store.Reseed].
var ErrNotSeeded = errors.New("redisstore: revocations not seeded from the issuer's durable list (Redis started empty)")

// seededMember is the marker member of the revocation set, score +inf.
// Real members start with a digit.
const seededMember = "!seeded"

// syncMessage on the channel tells every replica to re-read the whole set.
const syncMessage = "sync"

// revokeScript adds revocations to the sorted set KEYS[1] (member
// see member, score = until in ms), never lowering a score (ZADD GT),
// drops expired members, and publishes each live one on the channel, all
// atomically: a replica either sees the member in a full read or gets the
// message. Messages are "<until ms> <member>".
//
// ARGV[1] now (ms), ARGV[2] channel, ARGV[3] "1" to also mark the set
// seeded and publish "sync", then member, until pairs.
var revokeScript = redis.NewScript(`
local now = tonumber(ARGV[1])
for i = 4, #ARGV, 2 do
  local u = tonumber(ARGV[i+1])
  if u > now then
    redis.call('ZADD', KEYS[1], 'GT', u, ARGV[i])
    redis.call('PUBLISH', ARGV[2], ARGV[i+1] .. ' ' .. ARGV[i])
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], '+inf', '` + seededMember + `')
  redis.call('PUBLISH', ARGV[2], '` + syncMessage + `')
end
return 1
`)

// member is a revocation's name in the set: "<len(kind)>:<kind>:<value>".
// The length keeps kinds and values apart whatever bytes they hold.
func member(r store.Revocation) string {
	return strconv.Itoa(len(r.Kind)) + ":" + string(r.Kind) + ":" + r.Value
}

// Revoke implements store.Revocations. The revocation is kept until until
// (the longest remaining lifetime of a token it applies to), never
// shortened by a later Revoke with an earlier until, and pushed to every
// replica's cache by pub/sub in the same atomic step.
func (s *Store) Revoke(ctx context.Context, r store.Revocation, until time.Time) error {
	return s.revoke(ctx, []Entry{{r, until}}, false)
}

// Entry is one revocation and how long it matters.
type Entry struct {
	Revocation store.Revocation
	Until      time.Time
}

// reseedBatch bounds one script call of Reseed.
const reseedBatch = 1000

// Reseed writes the issuer's durable revocation list to Redis, then marks
// the set seeded, so AnyRevoked answers again after Redis came back empty.
// The issuer calls it at start and whenever [Store.Seeded] reports false
// ([Store.KeepSeeded] does both). Entries already present are kept (a
// later until wins); calling it twice is harmless.
func (s *Store) Reseed(ctx context.Context, entries []Entry) error {
	if err := s.checkRestart(ctx); err != nil {
		return err
	}
	for len(entries) > reseedBatch {
		if err := s.revoke(ctx, entries[:reseedBatch], false); err != nil {
			return err
		}
		entries = entries[reseedBatch:]
	}
	return s.revoke(ctx, entries, true)
}

func (s *Store) revoke(ctx context.Context, entries []Entry, seed bool) error {
	args := make([]any, 0, 3+2*len(entries))
	seedArg := "0"
	if seed {
		seedArg = "1"
	}
	args = append(args, s.now().UnixMilli(), s.revChannel, seedArg)
	for _, e := range entries {
		args = append(args, member(e.Revocation), ceilMilli(e.Until))
	}
	if err := revokeScript.Run(ctx, s.c, []string{s.revKey}, args...).Err(); err != nil {
		return wrap("revoke", err)
	}
	// This replica sees its own revocation at once, whatever the watcher
	// is doing.
	if s.cache != nil {
		for _, e := range entries {
			s.cache.add(member(e.Revocation), ceilMilli(e.Until))
		}
	}
	return nil
}

// AnyRevoked implements store.Revocations. It answers from the local cache
// while the cache is provably in sync (subscribed, fully read since the
// last reconnect, and a ping answered within MaxStale); otherwise it asks
// Redis in one round trip (ZMSCORE of every argument and the seeded
// marker) and returns Redis's error, or ErrNotSeeded, rather than guess.
func (s *Store) AnyRevoked(ctx context.Context, rs ...store.Revocation) (bool, error) {
	now := s.now()
	if s.cache != nil {
		if revoked, ok := s.cache.lookup(now, s.opts.MaxStale, s.opts.AllowUnseeded, rs); ok {
			return revoked, nil
		}
	}
	members := make([]string, 0, 1+len(rs))
	members = append(members, seededMember)
	for _, r := range rs {
		members = append(members, member(r))
	}
	scores, err := s.c.ZMScore(ctx, s.revKey, members...).Result()
	if err != nil {
		return false, wrap("revocations", err)
	}
	if len(scores) != len(members) {
		return false, wrap("revocations", errors.New("short ZMSCORE reply"))
	}
	if !math.IsInf(scores[0], 1) && !s.opts.AllowUnseeded {
		return false, ErrNotSeeded
	}
	for i, sc := range scores[1:] {
		if store.Applies(rs[i], int64(sc), now.UnixMilli()) { // a missing member reads as 0
			return true, nil
		}
	}
	return false, nil
}

// resetScript sets one member's score exactly (lowering it too), and
// tells every replica to re-read the whole set: a cache only ever raises
// what it holds. ARGV[1] channel, ARGV[2] member, ARGV[3] until (ms).
var resetScript = redis.NewScript(`
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('PUBLISH', ARGV[1], '` + syncMessage + `')
return 1
`)

// Reset implements [store.Resetter]: an operator lifting a block.
func (s *Store) Reset(ctx context.Context, r store.Revocation, until time.Time) error {
	if err := resetScript.Run(ctx, s.c, []string{s.revKey}, s.revChannel, member(r), ceilMilli(until)).Err(); err != nil {
		return wrap("reset", err)
	}
	if s.cache != nil {
		s.cache.invalidate() // re-read before answering from it again
	}
	return nil
}

// Seeded reports whether the revocation set carries the seeded marker: false
// on a new Redis and after Redis came back empty.
func (s *Store) Seeded(ctx context.Context) (bool, error) {
	_, err := s.c.ZScore(ctx, s.revKey, seededMember).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, wrap("seeded", err)
	}
	return true, nil
}

// KeepSeeded is the issuer's loop: every interval (zero means 1 s) it checks
// Seeded and, when false, reads the durable list with list and calls
// Reseed. It returns when ctx is done. Errors (Redis down, list failing)
// are passed to onErr, if not nil, and retried at the next tick.
func (s *Store) KeepSeeded(ctx context.Context, interval time.Duration, list func(context.Context) ([]Entry, error), onErr func(error)) {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.seedIfNeeded(ctx, list); err != nil && onErr != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Store) seedIfNeeded(ctx context.Context, list func(context.Context) ([]Entry, error)) error {
	ok, err := s.Seeded(ctx)
	if err != nil || ok {
		return err
	}
	entries, err := list(ctx)
	if err != nil {
		return err
	}
	return s.Reseed(ctx, entries)
}

// readAll reads every live revocation: the cache's full sync.
func (s *Store) readAll(ctx context.Context) (map[string]int64, bool, error) {
	zs, err := s.c.ZRangeByScoreWithScores(ctx, s.revKey, &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(s.now().UnixMilli(), 10),
		Max: "+inf",
	}).Result()
	if err != nil {
		return nil, false, wrap("revocations sync", err)
	}
	m := make(map[string]int64, len(zs))
	seeded := false
	for _, z := range zs {
		mem, _ := z.Member.(string)
		if mem == seededMember {
			seeded = true
			continue
		}
		if strings.HasPrefix(mem, "!") { // markers: the log sequence number
			continue
		}
		m[mem] = int64(z.Score)
	}
	return m, seeded, nil
}
