package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
)

// The proxy's per-request store work: one Use (a fresh pair) and one
// AnyRevoked of five kinds. Each runs against the local redis-server and,
// side by side, memstore: go test -bench . -run '^$' ./sidecar/store/redisstore

// concurrency × GOMAXPROCS goroutines call the store at once, as a
// proxy's concurrent requests do.
const concurrency = 16

var fiveKinds = []store.Revocation{
	{Kind: store.KindLease, Value: "lease-0123456789"},
	{Kind: store.KindJTI, Value: "jti-0123456789"},
	{Kind: store.KindSub, Value: "alice"},
	{Kind: store.KindClient, Value: "where2eat"},
	{Kind: store.KindJKT, Value: jkt},
}

func BenchmarkUse(b *testing.B) {
	srv := redistest.Start(b)
	until := time.Now().Add(time.Hour)
	var n atomic.Int64
	run := func(b *testing.B, r store.Replay) {
		b.ReportAllocs()
		b.SetParallelism(concurrency)
		defer cpuPerOp(b, srv)()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if err := r.Use(ctx, jkt, fmt.Sprintf("%022d", n.Add(1)), until); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("redis", func(b *testing.B) { run(b, open(b, srv, newPrefix(), redisstore.Options{NoCache: true})) })
	b.Run("redis-nobatch", func(b *testing.B) {
		run(b, open(b, srv, newPrefix(), redisstore.Options{NoCache: true, NoBatch: true}))
	})
	b.Run("memstore", func(b *testing.B) { run(b, &memstore.Replay{Max: 1 << 30}) })
}

func BenchmarkAnyRevoked(b *testing.B) {
	srv := redistest.Start(b)
	run := func(b *testing.B, v store.Revocations) {
		ctx := context.Background()
		for i := range 1000 {
			if err := v.Revoke(ctx, store.Revocation{Kind: store.KindLease, Value: fmt.Sprint(i)}, time.Now().Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.SetParallelism(concurrency)
		b.ResetTimer()
		defer cpuPerOp(b, srv)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				got, err := v.AnyRevoked(ctx, fiveKinds...)
				if err != nil || got {
					b.Fatal(got, err)
				}
			}
		})
	}
	b.Run("redis-cached", func(b *testing.B) {
		s := open(b, srv, newPrefix(), redisstore.Options{})
		waitWarm(b, s)
		run(b, s)
	})
	b.Run("redis-nocache", func(b *testing.B) { run(b, open(b, srv, newPrefix(), redisstore.Options{NoCache: true})) })
	b.Run("memstore", func(b *testing.B) { run(b, &memstore.Revocations{}) })
}

func BenchmarkAllow(b *testing.B) {
	srv := redistest.Start(b)
	l := ratelimit.Limit{Rate: 1e9, Burst: 1e9}
	run := func(b *testing.B, lim ratelimit.Limiter) {
		b.ReportAllocs()
		b.SetParallelism(concurrency)
		defer cpuPerOp(b, srv)()
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			key := fmt.Sprint("app-", n.Add(1))
			for pb.Next() {
				if _, err := lim.Allow(ctx, key, l, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("redis", func(b *testing.B) { run(b, open(b, srv, newPrefix(), redisstore.Options{NoCache: true})) })
	b.Run("memory", func(b *testing.B) { run(b, &ratelimit.Memory{}) })
}

// waitWarm waits for the cache to be in sync (bounded), so the benchmark
// measures the cached path.
func waitWarm(b *testing.B, s *redisstore.Store) {
	deadline := time.Now().Add(2 * time.Second)
	for !s.CacheReady() {
		if time.Now().After(deadline) {
			b.Fatal("revocation cache not in sync within 2 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cpuPerOp reports the CPU time one operation costs this process
// (client-cpu-µs/op: go-redis, syscalls) and redis-server (redis-cpu-µs/op,
// from INFO cpu): what a request costs the machine, independent of how
// loaded it is (the wall time per op on a shared 2-core machine is mostly
// waiting).
func cpuPerOp(b *testing.B, srv *redistest.Server) (stop func()) {
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	self0, redis0 := selfCPU(), redisCPU(b, c)
	return func() {
		b.StopTimer()
		defer c.Close()
		n := float64(b.N)
		b.ReportMetric(float64((selfCPU()-self0).Microseconds())/n, "client-cpu-µs/op")
		b.ReportMetric(float64((redisCPU(b, c)-redis0).Microseconds())/n, "redis-cpu-µs/op")
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func redisCPU(b *testing.B, c *redis.Client) time.Duration {
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}
