package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyless-dev/keyless/sidecar/nonce"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
)

// DefaultPrefix starts every key and the pub/sub channel.
const DefaultPrefix = "keyless:"

// Defaults of [Options]; MaxAge and FutureSkew match dpop's defaults
// (docs/security.md#d9).
const (
	DefaultMaxAge     = 60 * time.Second
	DefaultFutureSkew = 5 * time.Second
	DefaultMaxStale   = 500 * time.Millisecond
)

// Options configure a [Store]. The zero value is the production default.
type Options struct {
	// Prefix starts every key and the revocation channel; "" means
	// DefaultPrefix. Deployments sharing one Redis use distinct prefixes.
	// It must not contain '{' or '}': the store uses hash tags to keep
	// related keys in one Cluster slot.
	Prefix string

	// MaxAge and FutureSkew are the proof windows the DPoP verifier uses
	// (dpop.VerifyOptions); zero means DefaultMaxAge and
	// DefaultFutureSkew. The replay cache needs them to recover a proof's
	// iat from the until it is given (until = iat + MaxAge + FutureSkew)
	// for the restart guard; see the package doc. They must not be smaller
	// than the verifier's.
	MaxAge, FutureSkew time.Duration

	// NoBatch sends each replay and rate-limit script on its own instead
	// of pipelining those of concurrent requests together (see batcher).
	NoBatch bool

	// NoCache turns the local revocation cache off: every AnyRevoked is
	// then one round trip to Redis.
	NoCache bool
	// MaxStale is how long the local revocation cache answers after its
	// last proof of being connected and in sync; zero means
	// DefaultMaxStale. After that AnyRevoked asks Redis (and fails when
	// Redis is unreachable). Keep it well under the 1 s in which
	// revocations must reach every replica.
	MaxStale time.Duration

	// AllowUnseeded lets AnyRevoked answer while the revocation set has
	// never been seeded by the issuer ([Store.Reseed]). Only for
	// deployments with no durable revocation list: after Redis loses its
	// data, revoked tokens are then accepted again until they expire.
	AllowUnseeded bool

	// Now is the clock; nil means time.Now. Every replica's clock and
	// Redis's must agree (NTP): expiries are absolute times (PXAT).
	Now func() time.Time
}

// Store is keyless's shared state in Redis: the DPoP replay cache
// ([store.Replay]), revocations ([store.Revocations]), rate limits
// ([ratelimit.Limiter]), the server-nonce key ([nonce.KeySource]) and
// single-use values. It is safe for concurrent use. Close it to stop its
// revocation watcher and batcher.
type Store struct {
	c      redis.UniversalClient
	owned  bool // close c on Close
	prefix string
	opts   Options
	now    func() time.Time

	revKey, revChannel, nonceKey string
	guard                        time.Duration // MaxAge + 2*FutureSkew

	cache  *cache   // nil when NoCache
	batch  *batcher // nil when NoBatch
	cancel context.CancelFunc
	wg     sync.WaitGroup

	nonceMu   sync.Mutex
	lastNonce []byte // the key last read, re-offered if Redis lost it
}

var (
	_ store.Replay               = (*Store)(nil)
	_ store.Revocations          = (*Store)(nil)
	_ ratelimit.Limiter          = (*Store)(nil)
	_ nonce.KeySource            = (*Store)(nil)
	_ interface{ Close() error } = (*Store)(nil)
)

// New connects to the Redis named by rawURL (the `store: redis://...`
// config value) and returns a Store that owns the client:
//
//	redis://[user:password@]host:port[/db][?dial_timeout=3s&...]   one server
//	rediss://...                                                    the same over TLS
//	redis://host:port?master_name=mymaster&addr=host2:port          Sentinel
//	redis://host:port?addr=host2:port&addr=host3:port               Cluster
//	redis://host:port?cluster=true                                  Cluster, one seed
//
// Query parameters are go-redis's (redis.ParseURL, ParseFailoverURL,
// ParseClusterURL). Unless the URL sets them, New fails fast: max_retries
// 1, dialer_retries 1, dial_timeout, read_timeout and write_timeout 1 s
// (see clientDefaults). The client honours the deadline of each call's
// context (ContextTimeoutEnabled), so a caller's short deadline bounds a
// call to a hung server. New does not contact Redis: use [Store.Ready].
func New(rawURL string, opts Options) (*Store, error) {
	c, err := clientFromURL(rawURL)
	if err != nil {
		return nil, err
	}
	s, err := newStore(c, opts)
	if err != nil {
		c.Close()
		return nil, err
	}
	s.owned = true
	s.start()
	return s, nil
}

// NewClient returns a Store over a client the caller built (and closes
// after the Store).
func NewClient(c redis.UniversalClient, opts Options) (*Store, error) {
	s, err := newStore(c, opts)
	if err != nil {
		return nil, err
	}
	s.start()
	return s, nil
}

func clientFromURL(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redisstore: store URL: %w", err)
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
	default:
		return nil, fmt.Errorf("redisstore: store URL scheme %q: want redis, rediss or unix", u.Scheme)
	}
	q := u.Query()
	d := failFast(q)
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: sentinel URL: %w", err)
		}
		d.apply(&o.MaxRetries, &o.DialerRetries, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout)
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), nil
	case q.Has("addr") || q.Has("cluster"):
		if q.Has("cluster") {
			if q.Get("cluster") != "true" && q.Get("cluster") != "1" {
				return nil, fmt.Errorf("redisstore: cluster=%q: want true", q.Get("cluster"))
			}
			q.Del("cluster")
			u.RawQuery = q.Encode()
		}
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("redisstore: cluster URL: %w", err)
		}
		d.apply(&o.MaxRetries, &o.DialerRetries, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout)
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), nil
	default:
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: %w", err)
		}
		d.apply(&o.MaxRetries, &o.DialerRetries, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout)
		o.ContextTimeoutEnabled = true
		return redis.NewClient(o), nil
	}
}

// clientDefaults are the client settings New uses unless the URL sets
// them. go-redis's own (3 retries, 5 dial attempts with backoff, 5 s dial
// timeout) make a request wait about 2 s for its 503 when Redis is down;
// these answer within about a second: one retry (a pooled connection that
// died with a restart), one dial, 1 s timeouts.
type clientDefaults struct {
	maxRetries, dialerRetries                int
	dialTimeout, readTimeout, writeTimeout   time.Duration
	hasMaxRetries, hasDialerRetries, hasDial bool
	hasRead, hasWrite                        bool
}

func failFast(q url.Values) clientDefaults {
	return clientDefaults{
		maxRetries: 1, dialerRetries: 1,
		dialTimeout: time.Second, readTimeout: time.Second, writeTimeout: time.Second,
		hasMaxRetries: q.Has("max_retries"), hasDialerRetries: q.Has("dialer_retries"),
		hasDial: q.Has("dial_timeout"), hasRead: q.Has("read_timeout"), hasWrite: q.Has("write_timeout"),
	}
}

func (d clientDefaults) apply(maxRetries, dialerRetries *int, dial, read, write *time.Duration) {
	if !d.hasMaxRetries {
		*maxRetries = d.maxRetries
	}
	if !d.hasDialerRetries {
		*dialerRetries = d.dialerRetries
	}
	if !d.hasDial {
		*dial = d.dialTimeout
	}
	if !d.hasRead {
		*read = d.readTimeout
	}
	if !d.hasWrite {
		*write = d.writeTimeout
	}
}

func newStore(c redis.UniversalClient, opts Options) (*Store, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, errors.New("redisstore: prefix must not contain '{' or '}'")
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.FutureSkew <= 0 {
		opts.FutureSkew = DefaultFutureSkew
	}
	if opts.MaxStale <= 0 {
		opts.MaxStale = DefaultMaxStale
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{
		c:          c,
		prefix:     opts.Prefix,
		opts:       opts,
		now:        opts.Now,
		revKey:     opts.Prefix + "rev",
		revChannel: opts.Prefix + "rev",
		nonceKey:   opts.Prefix + "nonce-key",
		guard:      opts.MaxAge + 2*opts.FutureSkew,
	}
	if !opts.NoCache {
		s.cache = newCache()
	}
	return s, nil
}

func (s *Store) start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if !s.opts.NoBatch {
		s.batch = newBatcher(s, ctx, &s.wg)
	}
	if s.cache != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.watch(ctx)
		}()
	}
}

// Close stops the revocation watcher and the replay batcher and, when the
// Store made its client (New), closes it. Calls after Close fail.
func (s *Store) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.owned {
		return s.c.Close()
	}
	return nil
}

// Client is the underlying client, for health checks and tools.
func (s *Store) Client() redis.UniversalClient { return s.c }

// Ready reports whether Redis answers and the revocation set is seeded (or
// AllowUnseeded is set): what /readyz needs.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return wrap("ping", err)
	}
	if s.opts.AllowUnseeded {
		return nil
	}
	ok, err := s.Seeded(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotSeeded
	}
	return nil
}

// wrap marks an error as coming from Redis. Every such error reaches the
// caller: the store never turns "could not ask" into an answer.
func wrap(op string, err error) error {
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// ceilMilli is t in Unix milliseconds, rounded up: an expiry written with it
// (PXAT) is never earlier than t.
func ceilMilli(t time.Time) int64 {
	ns := t.UnixNano()
	ms := ns / 1e6
	if ns%1e6 > 0 {
		ms++
	}
	return ms
}

// CheckEviction reports an error unless Redis runs with maxmemory-policy
// noeviction. Any other policy lets Redis drop live replay entries or
// revocations under memory pressure (every policy, volatile-* included,
// can pick them, since they all have expiries), which reopens a replay
// window (docs/security.md#d3); with noeviction a full Redis refuses
// writes instead, and the proxy answers 503. Call it at start and log or
// refuse. Managed Redis services that forbid CONFIG GET make it fail with
// that error: check their setting by hand.
func (s *Store) CheckEviction(ctx context.Context) error {
	m, err := s.c.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		return wrap("read maxmemory-policy", err)
	}
	if p := m["maxmemory-policy"]; p != "noeviction" {
		return fmt.Errorf("%w: Redis maxmemory-policy is %q: live replay entries and revocations can be evicted; set noeviction", ErrEvictionPolicy, p)
	}
	return nil
}

// ErrEvictionPolicy is returned by [Store.CheckEviction] when Redis would
// evict keys under memory pressure (as opposed to not letting it be read).
var ErrEvictionPolicy = errors.New("redisstore: eviction policy")
