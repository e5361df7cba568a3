package redisstore

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyless-dev/keyless/sidecar/ratelimit"
)

// allowScript is ratelimit.Memory's token bucket, run atomically in Redis
// so every replica draws from one bucket. The caller's clock is used (as
// Memory does), so a replica whose clock is behind never refills early.
//
// KEYS[1] bucket hash {t = tokens, l = last refill, Unix µs}.
// ARGV[1] now (µs), ARGV[2] rate (tokens/s), ARGV[3] burst.
// Returns {allowed (0/1), tokens after, as a string}.
var allowScript = redis.NewScript(`
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 't', 'l')
local tokens, last = tonumber(b[1]), tonumber(b[2])
if tokens == nil or last == nil then
  tokens, last = burst, now
end
if now > last then
  tokens = math.min(burst, tokens + (now - last) / 1e6 * rate)
  last = now
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'l', string.format('%.17g', last))
-- A full bucket carries no state: keep the hash until it would be full,
-- plus a second for clock differences between replicas.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, string.format('%.17g', tokens)}
`)

// Allow implements ratelimit.Limiter with one atomic script per request,
// pipelined with concurrent calls unless Options.NoBatch.
func (s *Store) Allow(ctx context.Context, key string, l ratelimit.Limit, now time.Time) (ratelimit.Result, error) {
	if l.IsZero() {
		return ratelimit.Result{Allowed: true}, nil
	}
	if err := l.Validate(); err != nil {
		return ratelimit.Result{}, err
	}
	burst := float64(l.Burst)
	if l.Burst <= 0 {
		burst = math.Max(1, math.Ceil(l.Rate))
	}
	v, err := s.runScript(ctx, allowScript, []string{s.prefix + "rl:" + key},
		now.UnixMicro(),
		strconv.FormatFloat(l.Rate, 'g', -1, 64),
		strconv.FormatFloat(burst, 'g', -1, 64))
	if err != nil {
		return ratelimit.Result{}, wrap("rate limit", err)
	}
	vals, _ := v.([]any)
	if len(vals) != 2 {
		return ratelimit.Result{}, fmt.Errorf("redisstore: rate limit script answered %v", vals)
	}
	allowed, _ := vals[0].(int64)
	ts, _ := vals[1].(string)
	tokens, err := strconv.ParseFloat(ts, 64)
	if err != nil {
		return ratelimit.Result{}, fmt.Errorf("redisstore: rate limit script answered %v", vals)
	}
	res := ratelimit.Result{
		Allowed:   allowed == 1,
		Limit:     int(burst),
		Remaining: int(math.Floor(tokens)),
		Reset:     secs((burst - tokens) / l.Rate),
	}
	if !res.Allowed {
		res.RetryAfter = secs((1 - tokens) / l.Rate)
	}
	return res, nil
}

func secs(s float64) time.Duration {
	return time.Duration(math.Ceil(s * float64(time.Second)))
}
