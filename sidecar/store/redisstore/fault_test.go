package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
)

// Short windows keep the fault tests fast: MaxAge 1 s, FutureSkew 200 ms.
var shortWindows = redisstore.Options{MaxAge: time.Second, FutureSkew: 200 * time.Millisecond}

// untilFor is what the verifier passes for a proof issued at iat.
func untilFor(iat time.Time) time.Time {
	return iat.Add(shortWindows.MaxAge + shortWindows.FutureSkew)
}

// opCtx bounds each call so a dead Redis cannot hang a test.
func opCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRedisDown: with Redis killed every method returns an error, never
// an answer; once it is back (empty) the store recovers by itself, refuses
// proofs that may have been used before the loss, and answers nothing
// about revocations until the issuer re-seeds them, after which nothing
// revoked has come back.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, newPrefix(), shortWindows)
	lease := store.Revocation{Kind: store.KindLease, Value: "revoked-before"}
	other := store.Revocation{Kind: store.KindLease, Value: "never-revoked"}
	if err := s.Revoke(opCtx(t), lease, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	usedIAT := time.Now()
	if err := s.Use(opCtx(t), jkt, "used-before", untilFor(usedIAT)); err != nil {
		t.Fatal(err)
	}

	srv.Kill()

	checks := map[string]func(ctx context.Context) error{
		"Use": func(ctx context.Context) error {
			return s.Use(ctx, jkt, fmt.Sprint("down-", time.Now().UnixNano()), untilFor(time.Now()))
		},
		"Revoke": func(ctx context.Context) error {
			return s.Revoke(ctx, other, time.Now().Add(time.Hour))
		},
		"Allow": func(ctx context.Context) error {
			_, err := s.Allow(ctx, "app", ratelimit.Limit{Rate: 1}, time.Now())
			return err
		},
		"NonceKey": func(ctx context.Context) error { _, err := s.NonceKey(ctx); return err },
		"Ready":    func(ctx context.Context) error { return s.Ready(ctx) },
		"Reseed":   func(ctx context.Context) error { return s.Reseed(ctx, nil) },
	}
	for name, f := range checks {
		if err := f(opCtx(t)); err == nil {
			t.Errorf("%s with Redis down: nil error", name)
		} else if errors.Is(err, dpop.ErrReplay) {
			t.Errorf("%s with Redis down: %v, want a store error, not a replay", name, err)
		}
	}
	// The cache may answer for up to MaxStale after the last sign of
	// life; then AnyRevoked fails too. What it answered meanwhile was the
	// truth as of MaxStale ago: the revoked lease is never "not revoked".
	waitUntil(t, 2*time.Second, "AnyRevoked to fail with Redis down", func() bool {
		got, err := s.AnyRevoked(opCtx(t), lease, other)
		if err == nil && !got {
			t.Fatal("AnyRevoked with Redis down: revoked lease reported not revoked")
		}
		return err != nil
	})

	srv.Restart() // empty: no persistence

	// The client reconnects by itself (go-redis probes a refused server
	// about once a second). Revocations are refused until the issuer
	// re-seeds, then the lease is still revoked.
	waitUntil(t, 3*time.Second, "AnyRevoked to reach Redis again", func() bool {
		got, err := s.AnyRevoked(opCtx(t), lease, other)
		if err == nil {
			t.Fatalf("AnyRevoked after an empty restart, before the reseed = %v, nil; want ErrNotSeeded", got)
		}
		return errors.Is(err, redisstore.ErrNotSeeded)
	})
	if err := s.Ready(opCtx(t)); !errors.Is(err, redisstore.ErrNotSeeded) {
		t.Errorf("Ready after an empty restart = %v, want ErrNotSeeded", err)
	}
	durable := []redisstore.Entry{{Revocation: lease, Until: time.Now().Add(time.Hour)}}
	if err := s.Reseed(opCtx(t), durable); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 2*time.Second, "AnyRevoked to answer after the reseed", func() bool {
		got, err := s.AnyRevoked(opCtx(t), other, lease)
		if err != nil {
			return false
		}
		if !got {
			t.Fatal("revoked lease came back after the empty restart")
		}
		return true
	})
	if err := s.Ready(opCtx(t)); err != nil {
		t.Errorf("Ready after the reseed: %v", err)
	}

	// Replay: the proof used before the loss is refused, though its entry
	// is gone.
	if err := s.Use(opCtx(t), jkt, "used-before", untilFor(usedIAT)); !errors.Is(err, redisstore.ErrStoreReset) {
		t.Fatalf("proof used before the empty restart: Use = %v, want ErrStoreReset", err)
	}
	// New proofs pass once FutureSkew has passed since the restart.
	waitUntil(t, 2*time.Second, "a new proof to be accepted after the restart", func() bool {
		err := s.Use(opCtx(t), jkt, fmt.Sprint("after-", time.Now().UnixNano()), untilFor(time.Now()))
		if err != nil && !errors.Is(err, redisstore.ErrStoreReset) {
			t.Fatal(err)
		}
		return err == nil
	})
	epoch, err := s.Epoch(opCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !epoch.After(usedIAT) {
		t.Errorf("Epoch = %v, want after the restart (> %v)", epoch, usedIAT)
	}
	if err := s.Use(opCtx(t), jkt, "used-before", untilFor(usedIAT)); err == nil {
		t.Fatal("proof used before the empty restart accepted")
	}
	for name, f := range checks {
		if err := f(opCtx(t)); err != nil {
			t.Errorf("%s after recovery: %v", name, err)
		}
	}
}

// TestLoadThroughKillAndRestart: two replicas take a stream of proofs,
// each sent several times to both, while Redis is killed and restarted
// empty. No pair is ever accepted twice; store errors are errors, never
// passes; service resumes.
func TestLoadThroughKillAndRestart(t *testing.T) {
	srv := redistest.Start(t)
	p := newPrefix()
	a, b := open(t, srv, p, shortWindows), open(t, srv, p, shortWindows)
	replicas := []*redisstore.Store{a, b}

	type proof struct {
		jti string
		iat time.Time
	}
	var (
		mu       sync.Mutex
		accepted = map[string]int{}
		proofs   []proof
		errs     int
	)
	// accept counts an acceptance that completed before the pair's until:
	// two of those mean a replay got through. (After until the entry has
	// rightly expired; the verifier refuses such a proof on its iat.)
	accept := func(jti string, iat time.Time) {
		if time.Now().Before(untilFor(iat)) {
			accepted[jti]++
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// A new proof, or a replay of a recent one.
				mu.Lock()
				pr := proof{jti: fmt.Sprintf("w%d-%d", w, i), iat: time.Now()}
				if i%2 == 1 && len(proofs) > 0 {
					pr = proofs[(i*7+w)%len(proofs)]
				} else {
					proofs = append(proofs, pr)
				}
				mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				err := replicas[i%2].Use(ctx, jkt, pr.jti, untilFor(pr.iat))
				cancel()
				mu.Lock()
				if err == nil {
					accept(pr.jti, pr.iat)
				} else if !errors.Is(err, dpop.ErrReplay) {
					errs++
				}
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	counts := func() (acc, e int) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range accepted {
			acc += n
		}
		return acc, errs
	}
	acc0, _ := counts()
	waitUntil(t, 5*time.Second, "load to be accepted before the kill", func() bool {
		acc, _ := counts()
		return acc > acc0+100
	})
	srv.Kill()
	_, e0 := counts()
	waitUntil(t, 5*time.Second, "store errors while Redis is down", func() bool {
		_, e := counts()
		return e > e0+20
	})
	srv.Restart() // empty: no persistence
	acc1, _ := counts()
	waitUntil(t, 5*time.Second, "new proofs to be accepted after the restart", func() bool {
		acc, _ := counts()
		return acc > acc1+50
	})
	close(stop)
	wg.Wait()
	// Replay every proof seen at both replicas.
	for _, pr := range proofs {
		for _, r := range replicas {
			if err := r.Use(opCtx(t), jkt, pr.jti, untilFor(pr.iat)); err == nil {
				accept(pr.jti, pr.iat)
			}
		}
	}
	for jti, n := range accepted {
		if n > 1 {
			t.Errorf("proof %s accepted %d times", jti, n)
		}
	}
	t.Logf("%d proofs, %d accepted, %d store errors", len(proofs), len(accepted), errs)
}
