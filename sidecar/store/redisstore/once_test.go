package redisstore_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
)

func TestOnce(t *testing.T) {
	srv := redistest.Start(t)
	p := newPrefix()
	a, b := open(t, srv, p, redisstore.Options{NoCache: true}), open(t, srv, p, redisstore.Options{NoCache: true})

	if err := a.PutOnce(opCtx(t), "t1", []byte("ticket"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.PutOnce(opCtx(t), "t1", []byte("other"), time.Now().Add(time.Minute)); !errors.Is(err, redisstore.ErrExists) {
		t.Fatalf("PutOnce of a held id = %v, want ErrExists", err)
	}
	v, ok, err := b.TakeOnce(opCtx(t), "t1")
	if err != nil || !ok || string(v) != "ticket" {
		t.Fatalf("TakeOnce at the other replica = %q, %v, %v", v, ok, err)
	}
	if _, ok, err := a.TakeOnce(opCtx(t), "t1"); err != nil || ok {
		t.Fatalf("second TakeOnce = %v, %v; want not found", ok, err)
	}

	// Expired values are gone.
	until := time.Now().Add(200 * time.Millisecond)
	if err := a.PutOnce(opCtx(t), "t2", []byte("x"), until); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 3*time.Second, "the value to expire", func() bool {
		if time.Now().Before(until) {
			return false
		}
		_, ok, err := a.TakeOnce(opCtx(t), "t2")
		if err != nil {
			t.Fatal(err)
		}
		return !ok
	})

	// Concurrent takes: exactly one wins.
	if err := a.PutOnce(opCtx(t), "t3", []byte("x"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			if _, ok, err := s.TakeOnce(opCtx(t), "t3"); err != nil {
				t.Error(err)
			} else if ok {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d of 20 concurrent takes got the value, want 1", won.Load())
	}

	srv.Kill()
	if err := a.PutOnce(opCtx(t), "t4", nil, time.Now().Add(time.Minute)); err == nil {
		t.Error("PutOnce with Redis down: nil error")
	}
	if _, ok, err := a.TakeOnce(opCtx(t), "t4"); err == nil || ok {
		t.Errorf("TakeOnce with Redis down = %v, %v; want an error", ok, err)
	}
}
