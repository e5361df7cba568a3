package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
)

// TestNewURL: the config value picks the client; New does not dial.
func TestNewURL(t *testing.T) {
	tests := []struct {
		url     string
		want    string // the client's type, or "error"
		wantErr string
	}{
		{"redis://127.0.0.1:6379/0", "*redis.Client", ""},
		{"rediss://user:pw@127.0.0.1:6380/1?dial_timeout=3s", "*redis.Client", ""},
		{"redis://127.0.0.1:26379?master_name=mymaster&addr=127.0.0.1:26380", "*redis.Client", ""},
		{"redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002", "*redis.ClusterClient", ""},
		{"redis://127.0.0.1:7000?cluster=true", "*redis.ClusterClient", ""},
		{"redis://127.0.0.1:7000?cluster=maybe", "", "cluster"},
		{"http://127.0.0.1:6379", "", "scheme"},
		{"127.0.0.1:6379", "", "store URL"},
		{"localhost", "", "scheme"},
		{"redis://127.0.0.1:6379?bogus=1", "", "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			s, err := redisstore.New(tt.url, redisstore.Options{NoCache: true})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New = %v, want an error about %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var got string
			switch s.Client().(type) {
			case *redis.Client:
				got = "*redis.Client"
			case *redis.ClusterClient:
				got = "*redis.ClusterClient"
			}
			if got != tt.want {
				t.Errorf("client = %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := redisstore.New("redis://127.0.0.1:6379", redisstore.Options{Prefix: "a{b}:"}); err == nil {
		t.Error("a prefix with a hash tag was accepted")
	}
}

// TestKeepSeeded: the issuer's loop re-seeds the revocation set from its
// durable list when Redis comes back empty, without being told.
func TestKeepSeeded(t *testing.T) {
	srv := redistest.Start(t)
	p := newPrefix()
	issuer := open(t, srv, p, redisstore.Options{NoCache: true})
	proxy := open(t, srv, p, redisstore.Options{})
	lease := store.Revocation{Kind: store.KindLease, Value: "durable"}
	durable := []redisstore.Entry{{Revocation: lease, Until: time.Now().Add(time.Hour)}}
	var lists sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	lists.Add(1)
	go func() {
		defer lists.Done()
		issuer.KeepSeeded(ctx, 50*time.Millisecond, func(context.Context) ([]redisstore.Entry, error) {
			return durable, nil
		}, nil)
	}()
	defer func() { cancel(); lists.Wait() }()

	srv.Restart()
	waitUntil(t, 5*time.Second, "the issuer to re-seed and the proxy to answer", func() bool {
		got, err := proxy.AnyRevoked(opCtx(t), lease)
		if err == nil && !got {
			t.Fatal("revoked lease not revoked after the restart")
		}
		return err == nil
	})
}

// TestNonceKeyAfterEmptyRestart: replicas that keep running keep agreeing
// on the nonce key after Redis lost it.
func TestNonceKeyAfterEmptyRestart(t *testing.T) {
	srv := redistest.Start(t)
	p := newPrefix()
	a, b := open(t, srv, p, redisstore.Options{NoCache: true}), open(t, srv, p, redisstore.Options{NoCache: true})
	k, err := a.NonceKey(opCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.NonceKey(opCtx(t)); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	var kb []byte
	waitUntil(t, 5*time.Second, "NonceKey to answer after the restart", func() bool {
		kb, err = b.NonceKey(opCtx(t))
		return err == nil
	})
	ka, err := a.NonceKey(opCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(ka) != string(k) || string(kb) != string(k) {
		t.Error("the nonce key changed after an empty restart")
	}
}

// TestUseErrors: the sentinel errors are distinct, so the proxy maps a
// replay to 401 and everything else to 503.
func TestUseErrors(t *testing.T) {
	if errors.Is(redisstore.ErrStoreReset, store.ErrFull) || errors.Is(redisstore.ErrNotSeeded, store.ErrFull) {
		t.Error("sentinels overlap")
	}
}

// TestScriptCacheLost: Redis losing its script cache (a restart, a
// promotion, SCRIPT FLUSH) restarts the replay epochs, since entries may
// have been lost while epochs survived; scripts load again, batched or
// not, and no call runs twice.
func TestScriptCacheLost(t *testing.T) {
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	for _, opts := range []redisstore.Options{shortWindows, {MaxAge: shortWindows.MaxAge, FutureSkew: shortWindows.FutureSkew, NoBatch: true}} {
		s := open(t, srv, newPrefix(), opts)
		iat := time.Now()
		if err := s.Use(opCtx(t), jkt, "before", untilFor(iat)); err != nil {
			t.Fatal(err)
		}
		if err := admin.ScriptFlush(opCtx(t)).Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.Use(opCtx(t), jkt, "after-flush", untilFor(time.Now())); !errors.Is(err, redisstore.ErrStoreReset) {
			t.Fatalf("NoBatch=%v: Use after SCRIPT FLUSH = %v, want ErrStoreReset", opts.NoBatch, err)
		}
		waitUntil(t, 3*time.Second, "new proofs to pass after the flush", func() bool {
			err := s.Use(opCtx(t), jkt, fmt.Sprint("new-", time.Now().UnixNano()), untilFor(time.Now()))
			if err != nil && !errors.Is(err, redisstore.ErrStoreReset) {
				t.Fatal(err)
			}
			return err == nil
		})
		if err := s.Use(opCtx(t), jkt, "before", untilFor(iat)); err == nil {
			t.Fatalf("NoBatch=%v: proof used before the flush accepted again", opts.NoBatch)
		}
		admin.ScriptFlush(opCtx(t))
		if res, err := s.Allow(opCtx(t), "k", ratelimit.Limit{Rate: 1, Burst: 1}, time.Now()); err != nil || !res.Allowed || res.Remaining != 0 {
			t.Fatalf("NoBatch=%v: Allow after SCRIPT FLUSH = %+v, %v", opts.NoBatch, res, err)
		}
	}
}

// TestRestartFromSnapshot: Redis restarts from an RDB snapshot older than
// its last writes: the epochs survive but the last entries do not. The
// proof whose entry was lost must not pass again.
func TestRestartFromSnapshot(t *testing.T) {
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	p := newPrefix()
	s := open(t, srv, p, shortWindows)
	iat := time.Now()
	if err := s.Use(opCtx(t), jkt, "in-snapshot", untilFor(iat)); err != nil {
		t.Fatal(err)
	}
	if err := admin.Save(opCtx(t)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Use(opCtx(t), jkt, "after-snapshot", untilFor(iat)); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	srv.Restart() // loads dump.rdb from the same directory
	waitUntil(t, 3*time.Second, "Redis to answer after the restart", func() bool {
		return admin.Ping(opCtx(t)).Err() == nil
	})
	if n, err := admin.Exists(opCtx(t), p+"{r00}:epoch").Result(); err != nil || n != 1 {
		t.Fatalf("the snapshot was not loaded (epoch exists = %d, %v): the test proves nothing", n, err)
	}
	// A process that (wrongly) runs InitEpoch at every start does not
	// hide the restart: the epochs exist, so it only checks the script.
	if err := s.InitEpoch(opCtx(t), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, jti := range []string{"after-snapshot", "in-snapshot"} {
		var err error
		waitUntil(t, 3*time.Second, "Use to reach Redis again", func() bool {
			err = s.Use(opCtx(t), jkt, jti, untilFor(iat))
			return err == nil || errors.Is(err, redisstore.ErrStoreReset) || errors.Is(err, dpop.ErrReplay)
		})
		if err == nil {
			t.Errorf("proof %s, used before the restart from an older snapshot, accepted again", jti)
		}
	}
	// Revocations: the restored set may lack the last ones, so nothing is
	// answered until the issuer re-seeds.
	waitUntil(t, 2*time.Second, "AnyRevoked to refuse until the reseed", func() bool {
		_, err := s.AnyRevoked(opCtx(t), store.Revocation{Kind: store.KindSub, Value: "x"})
		return errors.Is(err, redisstore.ErrNotSeeded)
	})
	if err := s.Reseed(opCtx(t), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AnyRevoked(opCtx(t), store.Revocation{Kind: store.KindSub, Value: "x"}); err != nil {
		t.Errorf("AnyRevoked after the reseed: %v", err)
	}
}

// TestClosed: calls after Close fail at once instead of waiting.
func TestClosed(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, newPrefix(), redisstore.Options{})
	s.Close()
	done := make(chan error, 1)
	go func() { done <- s.Use(context.Background(), jkt, "closed", time.Now().Add(time.Minute)) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Use after Close: nil error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Use after Close did not return")
	}
}

func TestCheckEviction(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, newPrefix(), redisstore.Options{NoCache: true})
	if err := s.CheckEviction(opCtx(t)); err != nil {
		t.Fatalf("default policy: %v", err)
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	for _, p := range []string{"allkeys-lru", "volatile-ttl"} {
		if err := admin.ConfigSet(opCtx(t), "maxmemory-policy", p).Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckEviction(opCtx(t)); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("policy %s: CheckEviction = %v, want an error naming it", p, err)
		}
	}
}
