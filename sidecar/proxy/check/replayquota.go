package check

import (
	"math"
	"time"
)

// The replay quota per key is a key's legitimate maximum: a key held to R
// proofs per second with bursts of B has at most R x window + B live
// entries, where window (MaxAge + FutureSkew) is how long an entry lives
// (RFC 9449 section 11.1). A key past it is refused alone, with 429, and
// cannot fill the shared replay cache for everyone (docs/security.md,
// "Limits"). The process proxy and the edge Worker derive it alike.

// DefaultKeyRate is the proof rate per key assumed, for the replay quota,
// on authenticated routes without a per-subject rate limit.
const DefaultKeyRate = 20

// KeyQuota is the per-key quota of live replay entries: dpop.replay_per_key
// when set (negative: no bound), else the sum of the per-subject rates a
// key may spend across routes, DefaultKeyRate for a route without one,
// times the entry lifetime, plus the bursts, plus DefaultKeyRate for the
// WebSocket ticket endpoint, which is no route. A result of zero or less
// means no bound.
func KeyQuota(cfg Config) int {
	if cfg.DPoP.ReplayPerKey != 0 {
		return cfg.DPoP.ReplayPerKey
	}
	window := (cfg.DPoP.MaxAge + cfg.DPoP.FutureSkew).Seconds()
	rate, burst := 0.0, 0
	for _, r := range cfg.Routes {
		if r.Anonymous {
			continue
		}
		if r.RateLimit == nil || r.RateLimit.PerSubject.IsZero() {
			rate += DefaultKeyRate
			burst += DefaultKeyRate
			continue
		}
		rate += r.RateLimit.PerSubject.Rate
		burst += max(r.RateLimit.PerSubject.Burst, int(math.Ceil(r.RateLimit.PerSubject.Rate)))
	}
	return int(math.Ceil(rate*window)) + burst + DefaultKeyRate
}

// KeyQuotaError is the refusal of a key at its quota: 429 with Retry-After
// until its oldest entry expires (at least a second).
func KeyQuotaError(retry time.Duration) *Error {
	return &Error{Code: CodeRateLimited, Msg: "too many proofs from this key", Rule: "replay.per_key", RetryAfter: max(retry, time.Second)}
}
