package proxy

import (
	"time"

	"github.com/keyless-dev/keyless/sidecar/proxy/check"
)

// The replay quota per key ([keyquota]) is a key's legitimate maximum: a
// key held to R proofs per second with bursts of B has at most
// R x window + B live entries, where window (MaxAge + FutureSkew) is how
// long an entry lives (RFC 9449 section 11.1). A key past it is refused
// alone, with 429, checked against the lease's cnf.jkt before its proof's
// signature, and cannot fill the shared replay cache for everyone.

// DefaultKeyRate is the proof rate per key assumed, for the replay quota,
// on authenticated routes without a per-subject rate limit.
const DefaultKeyRate = check.DefaultKeyRate

// keyQuotaMax derives the per-key quota from the routes' rate limits
// (dpop.replay_per_key overrides it): [check.KeyQuota], which the edge
// Worker uses too.
func keyQuotaMax(cfg Config) int { return check.KeyQuota(cfg) }

// checkKeyQuota is the cheap check before the proof's signature: the
// lease's key (cnf.jkt) must have room in its replay quota, else 429 with
// Retry-After until its oldest entry expires.
func (p *Proxy) checkKeyQuota(x *exchange) *Error {
	if retry, ok := p.quota.Check(x.claims.JKT); !ok {
		return keyQuotaError(retry)
	}
	return nil
}

func keyQuotaError(retry time.Duration) *Error { return check.KeyQuotaError(retry) }
