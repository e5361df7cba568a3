package proxy

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
)

// TestHungStoreFailsFast: with the shared Redis stopped (SIGSTOP: the
// connections stay open, nothing answers) a request that needs the store
// gets 503 within a small multiple of store_timeout, never waits for the
// client library's own timeouts, and is never forwarded. The bound is a
// ceiling on a refusal, not a speed measurement: the old code waited at
// least the Redis client's 1 s read timeout per store call.
func TestHungStoreFailsFast(t *testing.T) {
	srv := redistest.Start(t)
	var st *redisstore.Store
	h := newHarness(t, func(h *harness) {
		st = seededRedis(t, srv.URL(), h.clock.Now)
		h.opts.Replay, h.opts.Revocations, h.opts.Limiter = st, st, st
		h.cfg.StoreTimeout = 100 * time.Millisecond
	})
	if res := h.do(h.authed("GET", "/limited", read...)); res.StatusCode != 200 {
		b, _ := readAll(res)
		t.Fatalf("with Redis up: %d %s", res.StatusCode, b)
	}
	srv.Pause()
	t.Cleanup(srv.Resume)
	for _, path := range []string{"/v1/orders", "/limited"} {
		r := h.authed("GET", path, read...)
		before := h.echo.hits.Load()
		start := time.Now()
		res := h.do(r)
		took := time.Since(start)
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s with Redis hung: %d, want 503", path, res.StatusCode)
		}
		if took > 900*time.Millisecond {
			t.Errorf("%s with Redis hung: answered after %v, want within a few store_timeouts (100ms)", path, took)
		}
		if h.echo.hits.Load() != before {
			t.Errorf("%s forwarded with Redis hung", path)
		}
	}
}

// seededRedis is a redisstore.Store on the real redis-server at url, seeded
// as the issuer seeds a new one (so it serves at once), on the harness's
// clock; closed with the test.
func seededRedis(t *testing.T, url string, now func() time.Time) *redisstore.Store {
	t.Helper()
	st, err := redisstore.New(url, redisstore.Options{MaxAge: time.Minute, FutureSkew: 5 * time.Second, NoCache: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := st.InitEpoch(ctx, now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.Reseed(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return st
}
