// Package storetest is the conformance suite every keyless store passes,
// the embedded one and the shared ones alike, as testing/fstest.TestFS is
// for file systems. A store's own tests call, for instance:
//
//	func TestConformance(t *testing.T) {
//		storetest.TestReplay(t, func(t *testing.T) store.Replay { return newReplay(t) })
//		storetest.TestRevocations(t, func(t *testing.T) store.Revocations { return newRevocations(t) })
//	}
//
// Each factory call must return a store that shares nothing with the stores
// of earlier calls (a fresh map, or a fresh key prefix in a shared server),
// so the subtests can run in parallel.
//
// Stores keep their own clock (memstore's Now, Redis's server time), so the
// suite uses the wall clock and expiries a few hundred milliseconds away,
// and checks expiry by polling against a deadline, never by sleeping a
// fixed time. The assertions do not depend on how long a call takes: an
// entry must still be live while the wall clock is well before its own
// expiry, and gone some time after it.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/nonce"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
)

// expiryDeadline bounds every wait for an entry to expire: stores that
// expire lazily or by a background sweep (Redis) get this long after the
// entry's own expiry.
const expiryDeadline = 3 * time.Second

// pollEvery is the polling interval for waits.
const pollEvery = 10 * time.Millisecond

// TestReplay checks a [store.Replay]: pairs are (jkt, jti); a used pair is a
// replay until its own expiry and fresh after it; concurrent copies let
// exactly one through.
func TestReplay(t *testing.T, newReplay func(t *testing.T) store.Replay) {
	t.Helper()
	ctx := context.Background()
	jkt := "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"

	t.Run("SecondUseIsReplay", func(t *testing.T) {
		t.Parallel()
		r := newReplay(t)
		until := time.Now().Add(time.Minute)
		mustUse(t, r, jkt, "j1", until)
		if err := r.Use(ctx, jkt, "j1", until); !errors.Is(err, dpop.ErrReplay) {
			t.Fatalf("second Use = %v, want dpop.ErrReplay", err)
		}
		// A later until does not make the pair fresh.
		if err := r.Use(ctx, jkt, "j1", until.Add(time.Hour)); !errors.Is(err, dpop.ErrReplay) {
			t.Fatalf("third Use with a later until = %v, want dpop.ErrReplay", err)
		}
	})

	t.Run("PairIsTheKey", func(t *testing.T) {
		t.Parallel()
		r := newReplay(t)
		until := time.Now().Add(time.Minute)
		mustUse(t, r, jkt, "j1", until)
		// The same jti under another key, and another jti under the same
		// key, are fresh.
		mustUse(t, r, "other-key-thumbprint", "j1", until)
		mustUse(t, r, jkt, "j2", until)
		// Pairs that would collide if the two parts were simply joined.
		mustUse(t, r, "a:b", "c", until)
		mustUse(t, r, "a", "b:c", until)
		mustUse(t, r, "a", ":b:c", until)
		// jti is compared exactly: case and length matter.
		mustUse(t, r, jkt, "J1", until)
		mustUse(t, r, jkt, "j1 ", until)
	})

	t.Run("LongAndBinaryJTI", func(t *testing.T) {
		t.Parallel()
		r := newReplay(t)
		until := time.Now().Add(time.Minute)
		long := make([]byte, 128)
		for i := range long {
			long[i] = byte(i)
		}
		mustUse(t, r, jkt, string(long), until)
		if err := r.Use(ctx, jkt, string(long), until); !errors.Is(err, dpop.ErrReplay) {
			t.Fatalf("replay of a 128-byte binary jti = %v, want dpop.ErrReplay", err)
		}
		mustUse(t, r, jkt, string(long[:127]), until)
	})

	// An entry lives until its own until, not until now + some window
	// (docs/security.md#a7), and is fresh once that has passed.
	t.Run("ExpiresAtItsOwnUntil", func(t *testing.T) {
		t.Parallel()
		r := newReplay(t)
		start := time.Now()
		short := start.Add(400 * time.Millisecond)
		long := start.Add(time.Hour)
		mustUse(t, r, jkt, "short", short)
		mustUse(t, r, jkt, "long", long)
		// Live while well before its expiry.
		if err := r.Use(ctx, jkt, "short", short); time.Now().Before(short.Add(-100*time.Millisecond)) && !errors.Is(err, dpop.ErrReplay) {
			t.Fatalf("Use before expiry = %v, want dpop.ErrReplay", err)
		}
		// Fresh again after it, within a bounded wait.
		waitFor(t, "the short entry to expire", func() bool {
			if time.Now().Before(short) {
				return false
			}
			err := r.Use(ctx, jkt, "short", long)
			if err != nil && !errors.Is(err, dpop.ErrReplay) {
				t.Fatalf("Use after expiry: %v", err)
			}
			return err == nil
		})
		// The re-use recorded a new entry with the new until.
		if err := r.Use(ctx, jkt, "short", long); !errors.Is(err, dpop.ErrReplay) {
			t.Fatalf("Use after re-recording = %v, want dpop.ErrReplay", err)
		}
		// The long entry is untouched by time passing: still a replay.
		if err := r.Use(ctx, jkt, "long", long); !errors.Is(err, dpop.ErrReplay) {
			t.Fatalf("long entry = %v, want dpop.ErrReplay", err)
		}
	})

	// A proof whose entry would already be expired (until in the past) is
	// not an error; verification never asks for it, but the store must not
	// fail on it or keep it.
	t.Run("UntilInThePast", func(t *testing.T) {
		t.Parallel()
		r := newReplay(t)
		past := time.Now().Add(-time.Second)
		if err := r.Use(ctx, jkt, "past", past); err != nil && !errors.Is(err, dpop.ErrReplay) {
			t.Fatalf("Use with a past until: %v", err)
		}
		mustUse(t, r, jkt, "past", time.Now().Add(time.Minute))
	})

	// docs/security.md#a6: exists-then-insert lets concurrent copies
	// through. Exactly one of 50 must win; the rest are replays.
	t.Run("ConcurrentCopies", func(t *testing.T) {
		t.Parallel()
		r := newReplay(t)
		until := time.Now().Add(time.Minute)
		var won, replayed atomic.Int32
		errs := make(chan error, 50)
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch err := r.Use(ctx, jkt, "copied", until); {
				case err == nil:
					won.Add(1)
				case errors.Is(err, dpop.ErrReplay):
					replayed.Add(1)
				default:
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent Use: %v", err)
		}
		if won.Load() != 1 || replayed.Load() != 49 {
			t.Errorf("accepted, replayed = %d, %d; want 1, 49", won.Load(), replayed.Load())
		}
	})

	t.Run("ManyPairs", func(t *testing.T) {
		t.Parallel()
		r := newReplay(t)
		until := time.Now().Add(time.Minute)
		for i := range 200 {
			mustUse(t, r, jkt, fmt.Sprintf("m%03d", i), until)
		}
		for i := range 200 {
			if err := r.Use(ctx, jkt, fmt.Sprintf("m%03d", i), until); !errors.Is(err, dpop.ErrReplay) {
				t.Fatalf("pair %d: %v, want dpop.ErrReplay", i, err)
			}
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		t.Parallel()
		r := newReplay(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		// A store may ignore the context (memory) or fail (network); it
		// must never report a replay it did not see as fresh and then
		// forget it. Either nil-and-recorded or an error is fine.
		err := r.Use(cctx, jkt, "canceled", time.Now().Add(time.Minute))
		if errors.Is(err, dpop.ErrReplay) {
			t.Fatalf("Use with a canceled context = ErrReplay for a fresh pair")
		}
		if err == nil {
			if err := r.Use(ctx, jkt, "canceled", time.Now().Add(time.Minute)); !errors.Is(err, dpop.ErrReplay) {
				t.Fatalf("pair accepted under a canceled context was not recorded: %v", err)
			}
		}
	})
}

func mustUse(t *testing.T, r store.Replay, jkt, jti string, until time.Time) {
	t.Helper()
	if err := r.Use(context.Background(), jkt, jti, until); err != nil {
		t.Fatalf("Use(%q, %q) = %v, want nil (fresh)", jkt, jti, err)
	}
}

// TestRevocations checks a [store.Revocations]: kinds are separate
// namespaces; an entry lives until its until; a later, earlier until never
// shortens it; AnyRevoked looks at every argument.
func TestRevocations(t *testing.T, newRevocations func(t *testing.T) store.Revocations) {
	t.Helper()
	ctx := context.Background()
	lease := store.Revocation{Kind: store.KindLease, Value: "L1"}
	sub := store.Revocation{Kind: store.KindSub, Value: "alice"}

	t.Run("RevokeThenRevoked", func(t *testing.T) {
		t.Parallel()
		v := newRevocations(t)
		wantRevoked(t, v, false, lease, sub)
		wantRevoked(t, v, false)
		mustRevoke(t, v, lease, time.Now().Add(time.Minute))
		wantRevoked(t, v, true, lease)
		// Any position among several.
		wantRevoked(t, v, true, sub, lease)
		wantRevoked(t, v, true, lease, sub)
		wantRevoked(t, v, false, sub)
	})

	t.Run("Watermarks", func(t *testing.T) {
		t.Parallel()
		v := newRevocations(t)
		// Cutoff a minute ago: what was issued before it is revoked, what
		// was issued after it is not; a lookup without IssuedAt matches.
		cutoff := time.Now().Add(-time.Minute).Truncate(time.Second)
		mustRevoke(t, v, sub, store.WatermarkUntil(cutoff))
		at := func(t time.Time) store.Revocation { r := sub; r.IssuedAt = t; return r }
		wantRevoked(t, v, true, at(cutoff.Add(-time.Second)))
		wantRevoked(t, v, true, at(cutoff)) // up to and including the cutoff
		wantRevoked(t, v, false, at(cutoff.Add(time.Second)))
		wantRevoked(t, v, true, sub)
		// Kinds that are not watermarks ignore IssuedAt.
		mustRevoke(t, v, lease, time.Now().Add(time.Minute))
		l := lease
		l.IssuedAt = time.Now().Add(time.Hour)
		wantRevoked(t, v, true, l)
		// A cutoff in the future is a block: new tokens are refused too.
		bob := store.Revocation{Kind: store.KindClient, Value: "bob-app"}
		mustRevoke(t, v, bob, store.WatermarkUntil(time.Now().Add(time.Hour)))
		bob.IssuedAt = time.Now()
		wantRevoked(t, v, true, bob)
		// Lifting the block lowers the cutoff (stores that can).
		if rs, ok := v.(store.Resetter); ok {
			if err := rs.Reset(ctx, bob, store.WatermarkUntil(time.Now().Add(-time.Minute))); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the lifted block to apply", func() bool {
				revoked, err := v.AnyRevoked(ctx, bob)
				return err == nil && !revoked
			})
		}
	})

	t.Run("KindsAreSeparate", func(t *testing.T) {
		t.Parallel()
		v := newRevocations(t)
		mustRevoke(t, v, lease, time.Now().Add(time.Minute))
		for _, k := range []store.Kind{store.KindJTI, store.KindFamily, store.KindSub, store.KindClient, store.KindJKT} {
			wantRevoked(t, v, false, store.Revocation{Kind: k, Value: "L1"})
		}
		// Values that would collide if kind and value were simply joined.
		mustRevoke(t, v, store.Revocation{Kind: "a", Value: "b:c"}, time.Now().Add(time.Minute))
		wantRevoked(t, v, false, store.Revocation{Kind: "a:b", Value: "c"})
		// Values are exact: case matters, no prefix match.
		wantRevoked(t, v, false, store.Revocation{Kind: store.KindLease, Value: "l1"})
		wantRevoked(t, v, false, store.Revocation{Kind: store.KindLease, Value: "L"})
		wantRevoked(t, v, false, store.Revocation{Kind: store.KindLease, Value: "L10"})
	})

	t.Run("OddValues", func(t *testing.T) {
		t.Parallel()
		v := newRevocations(t)
		odd := []string{"", " ", "a b", "x\x00y", "ünïcode", "line\nbreak", string(make([]byte, 1024))}
		for _, s := range odd {
			mustRevoke(t, v, store.Revocation{Kind: store.KindSub, Value: s}, time.Now().Add(time.Minute))
		}
		for _, s := range odd {
			wantRevoked(t, v, true, store.Revocation{Kind: store.KindSub, Value: s})
		}
		wantRevoked(t, v, false, store.Revocation{Kind: store.KindSub, Value: "x"})
	})

	t.Run("ExpiresAtItsUntil", func(t *testing.T) {
		t.Parallel()
		v := newRevocations(t)
		until := time.Now().Add(400 * time.Millisecond)
		mustRevoke(t, v, lease, until)
		mustRevoke(t, v, sub, time.Now().Add(time.Hour))
		if got, err := v.AnyRevoked(ctx, lease); err != nil || (!got && time.Now().Before(until.Add(-100*time.Millisecond))) {
			t.Fatalf("AnyRevoked before expiry = %v, %v; want true", got, err)
		}
		waitFor(t, "the revocation to expire", func() bool {
			got, err := v.AnyRevoked(ctx, lease)
			if err != nil {
				t.Fatal(err)
			}
			if got {
				return false
			}
			// Stores keep until in milliseconds (Redis PXAT): gone at
			// the millisecond of until is on time.
			if time.Now().Before(until.Truncate(time.Millisecond)) {
				t.Fatalf("revocation gone before its until")
			}
			return true
		})
		wantRevoked(t, v, true, sub)
		wantRevoked(t, v, true, lease, sub)
	})

	// A second Revoke with an earlier until never shortens the first.
	t.Run("NeverShortened", func(t *testing.T) {
		t.Parallel()
		v := newRevocations(t)
		start := time.Now()
		mustRevoke(t, v, lease, start.Add(time.Hour))
		mustRevoke(t, v, lease, start.Add(300*time.Millisecond))
		mustRevoke(t, v, lease, start.Add(-time.Second))
		// Wait until the earlier until has clearly passed.
		waitFor(t, "the earlier until to pass", func() bool {
			return time.Now().After(start.Add(800 * time.Millisecond))
		})
		wantRevoked(t, v, true, lease)
	})

	// A later until extends an earlier one.
	t.Run("Extended", func(t *testing.T) {
		t.Parallel()
		v := newRevocations(t)
		start := time.Now()
		mustRevoke(t, v, lease, start.Add(300*time.Millisecond))
		mustRevoke(t, v, lease, start.Add(time.Hour))
		waitFor(t, "the first until to pass", func() bool {
			return time.Now().After(start.Add(800 * time.Millisecond))
		})
		wantRevoked(t, v, true, lease)
	})

	t.Run("UntilInThePast", func(t *testing.T) {
		t.Parallel()
		v := newRevocations(t)
		if err := v.Revoke(ctx, lease, time.Now().Add(-time.Second)); err != nil {
			t.Fatalf("Revoke with a past until: %v", err)
		}
		wantRevoked(t, v, false, lease)
	})

	t.Run("Many", func(t *testing.T) {
		t.Parallel()
		v := newRevocations(t)
		until := time.Now().Add(time.Minute)
		for i := range 100 {
			mustRevoke(t, v, store.Revocation{Kind: store.KindJTI, Value: fmt.Sprint(i)}, until)
		}
		for i := range 100 {
			wantRevoked(t, v, true, store.Revocation{Kind: store.KindJTI, Value: fmt.Sprint(i)})
		}
		wantRevoked(t, v, false, store.Revocation{Kind: store.KindJTI, Value: "100"})
	})

	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		v := newRevocations(t)
		until := time.Now().Add(time.Minute)
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 20 {
			wg.Add(2)
			r := store.Revocation{Kind: store.KindLease, Value: fmt.Sprint("c", i)}
			go func() {
				defer wg.Done()
				if err := v.Revoke(ctx, r, until); err != nil {
					errs <- err
				}
			}()
			go func() {
				defer wg.Done()
				if _, err := v.AnyRevoked(ctx, r, sub); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for i := range 20 {
			wantRevoked(t, v, true, store.Revocation{Kind: store.KindLease, Value: fmt.Sprint("c", i)})
		}
	})
}

func mustRevoke(t *testing.T, v store.Revocations, r store.Revocation, until time.Time) {
	t.Helper()
	if err := v.Revoke(context.Background(), r, until); err != nil {
		t.Fatalf("Revoke(%v): %v", r, err)
	}
}

func wantRevoked(t *testing.T, v store.Revocations, want bool, rs ...store.Revocation) {
	t.Helper()
	got, err := v.AnyRevoked(context.Background(), rs...)
	if err != nil {
		t.Fatalf("AnyRevoked(%v): %v", rs, err)
	}
	if got != want {
		t.Fatalf("AnyRevoked(%v) = %v, want %v", rs, got, want)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(expiryDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(pollEvery)
	}
}

// TestLimiter checks a [ratelimit.Limiter] against the token-bucket
// semantics of [ratelimit.Memory]. The limiter takes the time as an
// argument, so these steps use a fixed, fake clock.
func TestLimiter(t *testing.T, newLimiter func(t *testing.T) ratelimit.Limiter) {
	t.Helper()
	t0 := time.Unix(1_700_000_000, 0)
	type step struct {
		at        time.Duration
		key       string
		allowed   bool
		remaining int
	}
	tests := []struct {
		name  string
		limit ratelimit.Limit
		steps []step
	}{
		{"BurstThenRefuse", ratelimit.Limit{Rate: 1, Burst: 2}, []step{
			{0, "a", true, 1}, {0, "a", true, 0}, {0, "a", false, 0},
		}},
		{"RefillAfterASecond", ratelimit.Limit{Rate: 1, Burst: 2}, []step{
			{0, "a", true, 1}, {0, "a", true, 0}, {0, "a", false, 0}, {time.Second, "a", true, 0},
		}},
		{"PartialRefill", ratelimit.Limit{Rate: 2, Burst: 1}, []step{
			{0, "a", true, 0}, {250 * time.Millisecond, "a", false, 0}, {500 * time.Millisecond, "a", true, 0},
		}},
		{"KeysAreIndependent", ratelimit.Limit{Rate: 1, Burst: 1}, []step{
			{0, "a", true, 0}, {0, "a", false, 0}, {0, "b", true, 0}, {0, "a:b", true, 0},
		}},
		{"BurstDefaultsToCeilRate", ratelimit.Limit{Rate: 2.5}, []step{
			{0, "a", true, 2}, {0, "a", true, 1}, {0, "a", true, 0}, {0, "a", false, 0},
		}},
		{"RefillCappedAtBurst", ratelimit.Limit{Rate: 10, Burst: 2}, []step{
			{0, "a", true, 1}, {time.Hour, "a", true, 1},
		}},
		{"ClockGoingBackDoesNotRefill", ratelimit.Limit{Rate: 1, Burst: 1}, []step{
			{time.Second, "a", true, 0}, {0, "a", false, 0},
		}},
		{"ZeroLimitNeverRefuses", ratelimit.Limit{}, []step{
			{0, "a", true, 0}, {0, "a", true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLimiter(t)
			for i, s := range tt.steps {
				res, err := l.Allow(context.Background(), s.key, tt.limit, t0.Add(s.at))
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if res.Allowed != s.allowed || res.Remaining != s.remaining {
					t.Errorf("step %d: Allowed, Remaining = %v, %d, want %v, %d", i, res.Allowed, res.Remaining, s.allowed, s.remaining)
				}
				if !tt.limit.IsZero() {
					if !res.Allowed && res.RetryAfter <= 0 {
						t.Errorf("step %d: RetryAfter = %v, want > 0", i, res.RetryAfter)
					}
					if res.Allowed && res.RetryAfter != 0 {
						t.Errorf("step %d: RetryAfter = %v for an allowed request, want 0", i, res.RetryAfter)
					}
				}
			}
		})
	}

	t.Run("RetryAfterAndReset", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t)
		lim := ratelimit.Limit{Rate: 0.5, Burst: 1}
		ctx := context.Background()
		if _, err := l.Allow(ctx, "k", lim, t0); err != nil {
			t.Fatal(err)
		}
		res, err := l.Allow(ctx, "k", lim, t0)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed || res.RetryAfter != 2*time.Second || res.Reset != 2*time.Second || res.Limit != 1 {
			t.Errorf("Allowed, RetryAfter, Reset, Limit = %v, %v, %v, %d; want false, 2s, 2s, 1", res.Allowed, res.RetryAfter, res.Reset, res.Limit)
		}
	})

	// Concurrent requests take exactly the burst, no more.
	t.Run("ConcurrentTakesExactlyBurst", func(t *testing.T) {
		t.Parallel()
		l := newLimiter(t)
		lim := ratelimit.Limit{Rate: 0.001, Burst: 10}
		var ok atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := l.Allow(context.Background(), "shared", lim, t0)
				if err != nil {
					errs <- err
					return
				}
				if res.Allowed {
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if ok.Load() != 10 {
			t.Errorf("%d of 50 allowed, want the burst, 10", ok.Load())
		}
	})
}

// TestNonceKey checks [nonce.KeySource]s that two replicas hold: each
// returns a key of at least 32 bytes, the same on every call, and the same
// as the other replica's. newPair returns two sources that must share a key
// (two replicas' views of one store), fresh on each call.
func TestNonceKey(t *testing.T, newPair func(t *testing.T) (a, b nonce.KeySource)) {
	t.Helper()
	ctx := context.Background()
	t.Run("SharedAndStable", func(t *testing.T) {
		t.Parallel()
		a, b := newPair(t)
		ka, err := a.NonceKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ka) < 32 {
			t.Fatalf("key is %d bytes, want at least 32", len(ka))
		}
		if allZero(ka) {
			t.Fatal("key is all zero")
		}
		for range 3 {
			kb, err := b.NonceKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(kb) != string(ka) {
				t.Fatal("the two replicas hold different keys")
			}
			ka2, err := a.NonceKey(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(ka2) != string(ka) {
				t.Fatal("the key changed between calls")
			}
		}
		// Nonces issued by one replica verify at the other.
		sa, err := nonce.New(ctx, a, time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := nonce.New(ctx, b, time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := sb.CheckNonce(sa.Current()); err != nil {
			t.Errorf("replica B refused replica A's nonce: %v", err)
		}
	})
	t.Run("ConcurrentFirstUse", func(t *testing.T) {
		t.Parallel()
		a, b := newPair(t)
		keys := make([][]byte, 20)
		var wg sync.WaitGroup
		for i := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				src := a
				if i%2 == 1 {
					src = b
				}
				k, err := src.NonceKey(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				keys[i] = k
			}()
		}
		wg.Wait()
		for i := range keys {
			if string(keys[i]) != string(keys[0]) {
				t.Fatalf("concurrent first calls returned different keys (%d vs 0)", i)
			}
		}
	})
	t.Run("DistinctStoresDistinctKeys", func(t *testing.T) {
		t.Parallel()
		a, _ := newPair(t)
		c, _ := newPair(t)
		ka, err := a.NonceKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kc, err := c.NonceKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(ka) == string(kc) {
			t.Error("two independent stores generated the same key: not random")
		}
	})
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
