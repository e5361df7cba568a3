// Package redisstore keeps keyless's shared state in Redis, for
// deployments with several proxy replicas and issuers. One
// [Store], made with [New] from the `store: redis://...` config value,
// implements every shared interface:
//
//   - store.Replay (dpop.ReplayCache): the jti replay cache;
//   - store.Revocations, with a pub/sub-fed local cache;
//   - ratelimit.Limiter: one token bucket per key for all replicas;
//   - nonce.KeySource: the server-nonce HMAC key every replica shares;
//   - single-use values ([Store.PutOnce], [Store.TakeOnce]) for WebSocket
//     tickets redeemed at another replica.
//
// The issuer writes revocations through [Mirror] (its durable list, then
// Redis) and keeps Redis seeded with [Store.KeepSeeded].
//
// It passes the same conformance suite as memstore (storetest). The client
// is a redis.UniversalClient: one server, Sentinel or Cluster by URL. The
// package is the only one that imports go-redis.
//
// # Failing closed
//
// Every Redis error is returned to the caller, wrapped, never turned into an
// answer: the proxy refuses the request with 503 (docs/security.md#d9)
// and recovers by itself when Redis answers again (go-redis reconnects on
// the next call). [Store.Ready] is what /readyz asks.
//
// # Replay
//
// A proof's (key thumbprint, jti) pair is recorded by one atomic SET NX
// PXAT with the expiry the verifier computes, iat + MaxAge + FutureSkew
// (docs/security.md#d15), rounded up to the millisecond, under
//
//	<prefix>{r<bucket>}:jti:<jkt>:<base64url(sha256(jti))>
//
// The jti is hashed so keys are bounded (RFC 9449 section 11.1). The bucket
// (the first byte of the hash) is a Cluster hash tag: entries spread over
// 256 slots, and each bucket has its own epoch key in the same slot.
//
// Use and Allow calls of concurrent requests are pipelined together (one
// write and one read system call for a batch, on both sides), which halves
// what a check costs the machine under load; Options.NoBatch turns it off.
//
// # Redis restarted empty: replay windows stay closed
//
// Redis without persistence (or a Cluster node without a replica) can come
// back empty and forget the pairs used in the last MaxAge + FutureSkew. A
// proof used just before the loss would then pass again. The store closes
// that window by itself, with no help from the proxy:
//
//   - each bucket keeps an epoch, <prefix>{r<bucket>}:epoch, the time it
//     started holding entries. It lives in the same slot as its entries, so
//     it is lost exactly when they are;
//   - Use runs in one script: read the epoch (creating it as now when
//     missing, i.e. after a loss), and refuse with [ErrStoreReset] any proof
//     whose iat (until − MaxAge − FutureSkew) is before epoch + FutureSkew,
//     before writing anything;
//   - a restart from an RDB or AOF file older than the last writes, or a
//     Sentinel/Cluster promotion of a replica that lacks the master's last
//     writes, keeps the epochs but not every entry. Redis keeps scripts in
//     memory only and does not replicate them, so each of these (and SCRIPT
//     FLUSH) makes the next Use answer NOSCRIPT: the store then restarts
//     every epoch at now before it loads the script again.
//
// A proof whose entry was lost was first used before the loss, so its iat
// is at most that time + FutureSkew: it is refused. Proofs made after the
// loss pass once FutureSkew has passed; until then the proxy answers 503
// (store unavailable) and clients retry with a new proof. So a restart costs
// at most FutureSkew (5 s) of 503s, and never a replay. The same guard runs
// on a brand-new Redis; [Store.InitEpoch] skips it on a first deployment
// (keyless serve --store calls it once in the life of its durable
// database). The store that finds the script missing restarts only the
// epochs that exist, so a replica that got there first does not start the
// guard on a store that holds nothing yet: its buckets' first Use does.
// [Store.Epoch] reports the last loss. MaxAge and FutureSkew in [Options]
// must be at least the verifier's.
//
// # Revocations
//
// Revocations live in one sorted set, <prefix>rev, member
// "<len(kind)>:<kind>:<value>", score = until in Unix ms: each entry's TTL
// is its remaining lifetime, enforced by score (expired members are never
// counted and are dropped on every write). One script adds (ZADD GT: a
// later Revoke never shortens), prunes and PUBLISHes on the channel
// <prefix>rev, atomically. AnyRevoked of several kinds is one ZMSCORE: one
// round trip, one key (so one Cluster slot).
//
// Each Store keeps a local copy, fed by the channel, and answers from it
// only while it is provably complete: a full read done since the current
// subscription, and a ping on the subscribed connection, sent within
// MaxStale (500 ms), answered. After a disconnect go-redis resubscribes and
// the copy is read again in full, so no revocation is missed while a
// replica was away; while the copy cannot answer, AnyRevoked asks Redis
// (and fails when Redis is down). A revocation therefore reaches every
// replica within MaxStale plus delivery, well inside the 1 s of
// docs/security.md#d9. Options.NoCache turns the copy off.
//
// Revocations lost with Redis's data are re-seeded from the issuer's
// durable list (boltstore): the set carries a marker that only
// [Store.Reseed] writes, and AnyRevoked answers [ErrNotSeeded] (503) until
// it is there, so nothing revoked comes back. An empty restart drops the
// marker with the data; a restart from an older file or a failover (which
// may keep the marker but not the last revocations) is detected as for
// replay, by the missing script, and the marker is removed, by the first
// Use, Reseed or cache re-read to see it. The issuer runs
// [Store.KeepSeeded] with its list.
//
// # Rate limits and nonce key
//
// Allow is ratelimit.Memory's token bucket as one Lua script on
// <prefix>rl:<key>, with the caller's clock. NonceKey creates one random
// 32-byte key with SET NX at <prefix>nonce-key and returns it to every
// replica.
//
// # Running Redis
//
//   - maxmemory-policy noeviction (the default): any other policy may drop
//     live replay entries. [Store.CheckEviction] checks it.
//   - Redis 7.0 or later (ZADD GT, ZMSCORE, GETDEL; scripts replicated by
//     effects, so a promoted replica has no cached scripts).
//   - Persistence is optional: an empty restart, a restart from an older
//     file and a failover are all detected (above). Persistence only saves
//     the issuer a reseed.
//   - Clocks: expiries are absolute (PXAT, scores), so keep replica and
//     Redis clocks in sync (NTP); a skew eats into the replay window.
//   - Prefix separates deployments sharing one Redis.
package redisstore
