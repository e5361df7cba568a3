package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyless-dev/keyless/sidecar/dpop"
)

// ErrStoreReset is returned by Use for a proof that may have been used
// before Redis lost its data (an empty restart): its iat is earlier than
// the restart time + FutureSkew. The entry that recorded the first use may
// be gone, so the store cannot tell a replay from a first use, and
// refuses: the proxy answers 503, and the client's next proof (with a
// fresh iat) passes once FutureSkew has passed since the restart. It is not
// dpop.ErrReplay.
var ErrStoreReset = errors.New("redisstore: proof predates the replay store's data (Redis restarted empty); retry with a new proof")

// buckets is the number of replay shards. Each has its own hash tag (so it
// is one Cluster slot, spread over the nodes) and its own epoch key in the
// same slot: when the node holding a slot loses its data, the epoch goes
// with the entries, and the loss is detected for exactly those entries.
const buckets = 256

// useScript records (jkt, jti) atomically, refusing proofs that predate
// the bucket's epoch.
//
// KEYS[1] entry key, KEYS[2] the bucket's epoch key (same slot).
// ARGV[1] until (ms), ARGV[2] now (ms), ARGV[3] guard (ms).
// Returns 1 recorded (fresh), 0 replay, -1 predates the epoch, -2 predates
// an epoch the script just created (the bucket's data was lost, or it is
// new).
//
// The entry is written with one SET NX PXAT (docs/security.md#d15);
// the epoch check runs in the same script, so no entry is written for a
// refused proof and nothing runs between the check and the write.
var useScript = redis.NewScript(`
local e = redis.call('GET', KEYS[2])
local created = false
if not e then
  redis.call('SET', KEYS[2], ARGV[2])
  e = ARGV[2]
  created = true
end
if tonumber(ARGV[1]) < tonumber(e) + tonumber(ARGV[3]) then
  if created then return -2 end
  return -1
end
if redis.call('SET', KEYS[1], '1', 'NX', 'PXAT', ARGV[1]) then
  return 1
end
return 0
`)

// replayKeys returns the entry key and its bucket's epoch key:
// <prefix>{r<bucket>}:jti:<jkt>:<base64url(sha256(jti))>. The jti is hashed
// so keys are bounded and printable (RFC 9449 section 11.1); the jkt is the
// thumbprint dpop computed, already bounded base64url.
func (s *Store) replayKeys(jkt, jti string) (entry, epoch string) {
	h := sha256.Sum256([]byte(jti))
	tag := fmt.Sprintf("{r%02x}", h[0])
	return s.prefix + tag + ":jti:" + jkt + ":" + base64.RawURLEncoding.EncodeToString(h[:]),
		s.prefix + tag + ":epoch"
}

func (s *Store) epochKey(bucket int) string {
	return fmt.Sprintf("%s{r%02x}:epoch", s.prefix, bucket)
}

// Use implements dpop.ReplayCache: one atomic script per proof, one round
// trip, pipelined with concurrent calls unless Options.NoBatch. It returns nil for a fresh pair, dpop.ErrReplay for a pair already
// recorded, ErrStoreReset (see the package doc), or the Redis error.
//
// https://www.rfc-editor.org/rfc/rfc9449#section-11.1
func (s *Store) Use(ctx context.Context, jkt, jti string, until time.Time) error {
	entry, epoch := s.replayKeys(jkt, jti)
	keys := []string{entry, epoch}
	args := []any{ceilMilli(until), s.now().UnixMilli(), s.guard.Milliseconds()}
	v, err := s.runScript(ctx, useScript, keys, args...)
	if err != nil {
		return wrap("replay", err)
	}
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("redisstore: replay script answered %v", v)
	}
	switch n {
	case 1:
		return nil
	case 0:
		return dpop.ErrReplay
	case -1:
		return ErrStoreReset
	case -2:
		// This bucket's epoch was missing: Redis (or this Cluster node)
		// lost its data. Start every other bucket that lost it too now,
		// so the whole store leaves the guard FutureSkew from now rather
		// than each bucket FutureSkew after its first use.
		if _, err := s.setMissingEpochs(ctx, s.now()); err != nil {
			return err
		}
		return ErrStoreReset
	}
	return fmt.Errorf("redisstore: replay script answered %d", n)
}

// scriptCacheLost runs when Redis answered NOSCRIPT for script, before
// the script is run again. Redis keeps scripts in memory only and does
// not replicate them (7.0 replicates their effects), so a missing replay
// script means this server restarted (perhaps from an RDB or AOF file
// older than its last writes), was promoted from a replica that may lack
// the master's last writes, or had SCRIPT FLUSH: checkRestart records it.
func (s *Store) scriptCacheLost(ctx context.Context, script *redis.Script) error {
	if script != useScript {
		return nil
	}
	return s.checkRestart(ctx)
}

// restartScript removes the seeded marker (and tells every cache) unless
// the restart count KEYS[2] moved since the caller read it (ARGV[1]):
// then another store recorded this restart and loaded the replay script,
// and the issuer may have seeded the set since, which must stay seeded.
// ARGV[2] is the revocation channel.
var restartScript = redis.NewScript(`
local n = redis.call('GET', KEYS[2]) or '0'
if n ~= ARGV[1] then
  return 0
end
redis.call('ZREM', KEYS[1], '` + seededMember + `')
redis.call('PUBLISH', ARGV[2], '` + syncMessage + `')
return 1
`)

// checkRestart records a restart Redis has not told this store about yet:
// if the replay script is missing, every bucket's epoch that exists restarts now (the
// epochs may have survived while recent entries did not, so proofs with
// iat before now + FutureSkew are refused), the seeded marker is removed
// so AnyRevoked answers ErrNotSeeded until the issuer re-seeds, and the
// script is loaded again. The watcher runs it before each full read,
// Reseed before seeding, and every call that met NOSCRIPT before running
// the replay script again, so none trusts or marks a set that a restart
// may have cut.
//
// Several stores find the same restart at once (the issuer's Reseed and
// every replica's watcher on a new Redis). A store that checked before
// another loaded the script must not remove the marker the issuer wrote
// after that load, so every load raises a restart count (restartsKey)
// after it and the marker is removed only if the count is still the one
// read before SCRIPT EXISTS (restartScript). Reading the count first
// makes the check safe without a transaction: a load that finished
// before the read is seen by SCRIPT EXISTS, one that finished after it
// raised the count. Epochs are set by every store that saw the script
// missing: setting them again only moves the guard later (fails closed).
func (s *Store) checkRestart(ctx context.Context) error {
	seen, err := s.c.Get(ctx, s.restartsKey()).Result()
	if errors.Is(err, redis.Nil) {
		seen, err = "0", nil
	}
	if err != nil {
		return wrap("restart count", err)
	}
	exists, err := s.c.ScriptExists(ctx, useScript.Hash()).Result()
	if err != nil {
		return wrap("script exists", err)
	}
	if len(exists) == 1 && exists[0] {
		return nil
	}
	// SET XX: only epochs that exist restart. A bucket without one
	// holds no entry either; its first Use creates the epoch and starts
	// the guard there (the -2 answer), and a first deployment's InitEpoch
	// may still declare a brand-new store fresh after a replica's watcher
	// got here first.
	now := s.now().UnixMilli()
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for b := range buckets {
			p.SetXX(ctx, s.epochKey(b), now, 0)
		}
		return nil
	})
	if err != nil {
		return wrap("restart epochs", err)
	}
	if err := restartScript.Run(ctx, s.c, []string{s.revKey, s.restartsKey()}, seen, s.revChannel).Err(); err != nil {
		return wrap("restart marker", err)
	}
	return s.loadReplay(ctx)
}

// loadReplay loads the replay script, then raises the restart count (see
// checkRestart). Any seeding happens after both.
func (s *Store) loadReplay(ctx context.Context) error {
	if err := useScript.Load(ctx, s.c).Err(); err != nil {
		return wrap("load replay script", err)
	}
	if err := s.c.Incr(ctx, s.restartsKey()).Err(); err != nil {
		return wrap("restart count", err)
	}
	return nil
}

// restartsKey counts loads of the replay script. Its hash tag is the
// revocation set's key, so restartScript's two keys share a Cluster slot.
func (s *Store) restartsKey() string { return "{" + s.revKey + "}:restarts" }

// InitEpoch declares a brand-new store fresh, for a first deployment and
// tests: when no replay bucket has an epoch yet, each gets at (a time
// before any proof was used; time.Now().Add(-time.Hour) is safe) and the
// replay script is loaded, so the restart guard does not refuse the first
// FutureSkew of proofs. When some bucket already has an epoch, nothing is
// moved and a missing script counts as a restart, as everywhere else.
//
// Never call it after Redis came back empty: that store looks brand-new,
// and declaring it fresh reopens the replay window the guard closes. It is
// an operator's step, not something to run at every start.
func (s *Store) InitEpoch(ctx context.Context, at time.Time) error {
	created, err := s.setMissingEpochs(ctx, at)
	if err != nil {
		return err
	}
	if created < buckets {
		return s.checkRestart(ctx)
	}
	return s.loadReplay(ctx)
}

// setMissingEpochs gives every bucket without an epoch the epoch at and
// reports how many it created.
func (s *Store) setMissingEpochs(ctx context.Context, at time.Time) (created int, err error) {
	cmds := make([]*redis.BoolCmd, buckets)
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for b := range buckets {
			cmds[b] = p.SetNX(ctx, s.epochKey(b), at.UnixMilli(), 0)
		}
		return nil
	})
	if err != nil {
		return 0, wrap("init epoch", err)
	}
	for _, c := range cmds {
		if c.Val() {
			created++
		}
	}
	return created, nil
}

// Epoch is the latest time any replay bucket started holding entries: the
// last time Redis (or a Cluster node) came back empty, or the first start.
// A bucket with no epoch yet (never used since) counts as now. Proofs with
// iat before Epoch + FutureSkew may be refused with ErrStoreReset. For
// metrics and operators; Use enforces it by itself.
func (s *Store) Epoch(ctx context.Context) (time.Time, error) {
	cmds := make([]*redis.StringCmd, buckets)
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for b := range buckets {
			cmds[b] = p.Get(ctx, s.epochKey(b))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return time.Time{}, wrap("epoch", err)
	}
	var latest int64
	for _, c := range cmds {
		ms, err := c.Int64()
		if errors.Is(err, redis.Nil) {
			return s.now(), nil
		}
		if err != nil {
			return time.Time{}, wrap("epoch", err)
		}
		latest = max(latest, ms)
	}
	return time.UnixMilli(latest), nil
}
