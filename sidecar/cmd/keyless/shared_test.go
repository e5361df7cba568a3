package main

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
)

// With --store, go-redis's own lines (here: dialing a Redis that is not
// there) reach keyless's logger as store.redis, not raw stderr.
func TestOpenSharedRoutesRedisLogs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := openShared(ctx, "redis://"+addr+"/0", 0, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for range 3 {
		_ = st.Client().Ping(ctx).Err()
	}
	if !strings.Contains(buf.String(), `"msg":"store.redis"`) {
		t.Errorf("go-redis's lines did not reach the logger:\n%s", buf.String())
	}
}

// waitSeeded waits (at most 15 s) until the issuer has seeded the shared
// store: before that every replica, and the issuer's own revocation
// checks, answer 503 "not seeded" (fail closed), as /readyz reports.
func waitSeeded(t testing.TB, st *redisstore.Store) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := st.Ready(context.Background())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("shared store not seeded: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
