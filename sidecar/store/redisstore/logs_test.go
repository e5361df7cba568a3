package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestLogRouterRateLimits(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1_800_000_000, 0)
	l := newLogRouter(slog.New(slog.NewJSONHandler(&buf, nil)), 10*time.Second, func() time.Time { return now })
	for range 30 { // three a second for ten seconds, as a down Redis does
		l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %s", 1, "connection refused")
		now = now.Add(time.Second / 3)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines in 10 s, want 1:\n%s", len(lines), buf.String())
	}
	now = now.Add(time.Second)
	l.Printf(context.Background(), "redis: still down")
	lines = strings.Split(strings.TrimSpace(buf.String()), "\n")
	var m map[string]any
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &m) != nil {
		t.Fatalf("lines:\n%s", buf.String())
	}
	if m["msg"] != "store.redis" || m["level"] != "WARN" || m["err"] != "redis: still down" || m["suppressed"] != float64(29) {
		t.Errorf("second line = %v", m)
	}
}

// A client whose server is gone: go-redis's own dial failures arrive
// through keyless's logger as JSON, not raw on stderr.
func TestRouteLogsFromARealClient(t *testing.T) {
	var buf syncBuf
	RouteLogs(slog.New(slog.NewJSONHandler(&buf, nil)), time.Hour)
	t.Cleanup(func() { RouteLogs(slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)), time.Hour) })
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	for range 3 {
		_ = c.Ping(context.Background()).Err()
	}
	out := buf.String()
	if !strings.Contains(out, `"msg":"store.redis"`) || strings.Count(out, "\n") != 1 {
		t.Errorf("go-redis's lines through the logger, rate-limited:\n%s", out)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
