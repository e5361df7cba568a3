package proxy

import (
	"context"
	"time"

	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
)

// The proxy's stores (replay, revocations, rate limits, tickets) are called
// on every request, under a deadline of Config.StoreTimeout: a store that
// hangs (a stopped Redis, a full network buffer) fails the request fast
// and closed, with 503, instead of holding it for the client library's own
// timeouts. The stores must honour ctx (redisstore does: its client runs
// with ContextTimeoutEnabled).

func bounded(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

type deadlineReplay struct {
	store.Replay
	d time.Duration
}

func (s deadlineReplay) Use(ctx context.Context, jkt, jti string, until time.Time) error {
	ctx, cancel := bounded(ctx, s.d)
	defer cancel()
	return s.Replay.Use(ctx, jkt, jti, until)
}

type deadlineRevocations struct {
	store.Revocations
	d time.Duration
}

func (s deadlineRevocations) AnyRevoked(ctx context.Context, rs ...store.Revocation) (bool, error) {
	ctx, cancel := bounded(ctx, s.d)
	defer cancel()
	return s.Revocations.AnyRevoked(ctx, rs...)
}

func (s deadlineRevocations) Revoke(ctx context.Context, r store.Revocation, until time.Time) error {
	ctx, cancel := bounded(ctx, s.d)
	defer cancel()
	return s.Revocations.Revoke(ctx, r, until)
}

type deadlineLimiter struct {
	ratelimit.Limiter
	d time.Duration
}

func (s deadlineLimiter) Allow(ctx context.Context, key string, l ratelimit.Limit, now time.Time) (ratelimit.Result, error) {
	ctx, cancel := bounded(ctx, s.d)
	defer cancel()
	return s.Limiter.Allow(ctx, key, l, now)
}

type deadlineTickets struct {
	TicketStore
	d time.Duration
}

func (s deadlineTickets) Put(ctx context.Context, id string, t Ticket, until time.Time) error {
	ctx, cancel := bounded(ctx, s.d)
	defer cancel()
	return s.TicketStore.Put(ctx, id, t, until)
}

func (s deadlineTickets) Take(ctx context.Context, id string) (Ticket, bool, error) {
	ctx, cancel := bounded(ctx, s.d)
	defer cancel()
	return s.TicketStore.Take(ctx, id)
}
