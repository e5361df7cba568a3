package check

import (
	"context"
	"strconv"
	"time"

	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token/atjwt"
)

// TakeRateLimit takes a token from r's per-subject, then per-app bucket: the
// subject first, so that requests its own limit refuses never spend the
// app's bucket and one user cannot drain the app's limit for everyone. The
// subject is namespaced by its issuer (store.SubjectValue), so an external
// issuer's "alice" never shares a bucket with keyless's own. It returns the
// tighter bucket's result for the RateLimit-* fields
// (draft-ietf-httpapi-ratelimit-headers), nil when the route has no limit;
// a refusal is 429 with Retry-After, and a limiter that cannot answer is a
// 503, never a pass. The process proxy and the edge Worker both decide
// through it.
func TakeRateLimit(ctx context.Context, lim ratelimit.Limiter, r *Route, c *atjwt.Claims, now time.Time) (*ratelimit.Result, *Error) {
	rl := r.RateLimit
	if rl == nil || (rl.PerApp.IsZero() && rl.PerSubject.IsZero()) {
		return nil, nil
	}
	var tight *ratelimit.Result
	for _, b := range [...]struct {
		key   string
		limit ratelimit.Limit
	}{
		{"sub\x00" + r.Name + "\x00" + c.ClientID + "\x00" + store.SubjectValue(c.IdP, c.Subject), rl.PerSubject},
		{"app\x00" + r.Name + "\x00" + c.ClientID, rl.PerApp},
	} {
		if b.limit.IsZero() {
			continue
		}
		res, err := lim.Allow(ctx, b.key, b.limit, now)
		if err != nil {
			return nil, &Error{Code: CodeUnavailable, Msg: "rate limiter unavailable", Err: err, Rule: "ratelimit.store"}
		}
		if tight == nil || !res.Allowed || (tight.Allowed && res.Remaining < tight.Remaining) {
			r := res
			tight = &r
		}
		if !res.Allowed {
			break
		}
	}
	if tight != nil && !tight.Allowed {
		return tight, &Error{Code: CodeRateLimited, Msg: "rate limit exceeded", Rule: "ratelimit", RetryAfter: max(tight.RetryAfter, time.Second)}
	}
	return tight, nil
}

// RateLimitFields are the RateLimit-* response fields of res
// (draft-ietf-httpapi-ratelimit-headers): limit, remaining, and the reset
// in whole seconds, rounded up.
func RateLimitFields(res *ratelimit.Result) [3][2]string {
	return [3][2]string{
		{"RateLimit-Limit", strconv.Itoa(res.Limit)},
		{"RateLimit-Remaining", strconv.Itoa(res.Remaining)},
		{"RateLimit-Reset", strconv.FormatInt(int64((res.Reset+time.Second-1)/time.Second), 10)},
	}
}
