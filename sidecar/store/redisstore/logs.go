package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultLogEvery is how often, at most, RouteLogs passes one of go-redis's
// own lines on: while Redis is down its pool logs every failed dial, several
// a second.
const DefaultLogEvery = 10 * time.Second

// RouteLogs sends go-redis's own log lines (dial failures, pool and
// cluster notices), which it otherwise prints raw on stderr between
// keyless's JSON lines, to log as "store.redis" warnings: at most one per
// every (zero means DefaultLogEvery), the next one saying how many were
// suppressed meanwhile. go-redis has one logger per process, so the last
// call wins.
func RouteLogs(log *slog.Logger, every time.Duration) {
	redis.SetLogger(newLogRouter(log, every, time.Now))
}

// logRouter adapts go-redis's Printf logging to slog, rate-limited.
type logRouter struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func newLogRouter(log *slog.Logger, every time.Duration, now func() time.Time) *logRouter {
	if every <= 0 {
		every = DefaultLogEvery
	}
	return &logRouter{log: log, every: every, now: now}
}

// Printf implements go-redis's internal.Logging.
func (l *logRouter) Printf(ctx context.Context, format string, v ...any) {
	now := l.now()
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	msg := fmt.Sprintf(format, v...)
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	attrs := []any{"err", msg}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	l.log.WarnContext(ctx, "store.redis", attrs...)
}
