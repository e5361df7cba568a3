package lease

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/store"
)

// quotaCounter enforces the policy's per-app quotas in fixed one-hour
// windows. In memory it is per process; with kv set (Options.SharedQuotas:
// replicas on one shared database) the counts are rows of that database,
// so the replicas enforce one quota together.
type quotaCounter struct {
	mu     sync.Mutex
	window int64          // current window, hours since the epoch
	counts map[string]int // "app\x00" and "app\x00sub" -> leases this window
	kv     store.KV
}

// bucketQuotas holds the shared counts: key = the window (16 hex digits of
// hours since the epoch), NUL, "app\x00" or "app\x00sub"; value = the
// count in decimal. Windows sort by time, so ended ones are swept first.
const bucketQuotas = "quotas"

// takeCtx is take, counted in the shared database when there is one; a
// count that cannot be read or written refuses with the error.
func (q *quotaCounter) takeCtx(ctx context.Context, app, sub string, lim policy.Quota, now time.Time) (time.Duration, bool, error) {
	if q.kv == nil || (lim.PerAppPerHour == 0 && lim.PerSubjectPerHour == 0) {
		wait, ok := q.take(app, sub, lim, now)
		return wait, ok, nil
	}
	w := now.Unix() / 3600
	prefix := fmt.Sprintf("%016x\x00", w)
	ka, ks := prefix+app+"\x00", prefix+app+"\x00"+sub
	var wait time.Duration
	ok := false
	err := q.kv.Update(ctx, func(tx store.Tx) error {
		na, _ := strconv.Atoi(string(tx.Get(bucketQuotas, ka)))
		ns, _ := strconv.Atoi(string(tx.Get(bucketQuotas, ks)))
		if (lim.PerAppPerHour > 0 && na >= lim.PerAppPerHour) || (lim.PerSubjectPerHour > 0 && ns >= lim.PerSubjectPerHour) {
			ok, wait = false, time.Unix((w+1)*3600, 0).Sub(now)
			return nil
		}
		ok, wait = true, 0
		if err := tx.Put(bucketQuotas, ka, []byte(strconv.Itoa(na+1))); err != nil {
			return err
		}
		return tx.Put(bucketQuotas, ks, []byte(strconv.Itoa(ns+1)))
	})
	if err != nil {
		return 0, false, err
	}
	return wait, ok, nil
}

// SweepQuotas deletes the shared counts of ended windows, at most max per
// call, and reports how many it deleted.
func (s *Service) SweepQuotas(ctx context.Context, max int) (int, error) {
	if s.quota.kv == nil {
		return 0, nil
	}
	cur := fmt.Sprintf("%016x", s.now().Unix()/3600)
	n := 0
	err := s.quota.kv.Update(ctx, func(tx store.Tx) error {
		var dead []string
		err := tx.ForEach(bucketQuotas, func(k string, _ []byte) error {
			if k >= cur || len(dead) >= max {
				return errStopSweep
			}
			dead = append(dead, k)
			return nil
		})
		if err != nil && err != errStopSweep {
			return err
		}
		n = len(dead)
		for _, k := range dead {
			if err := tx.Delete(bucketQuotas, k); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

var errStopSweep = fmt.Errorf("lease: stop sweep")

func newQuotaCounter() *quotaCounter { return &quotaCounter{counts: map[string]int{}} }

// take counts one lease of app for sub if the quota allows it, or reports
// how long until the window ends.
func (q *quotaCounter) take(app, sub string, lim policy.Quota, now time.Time) (time.Duration, bool) {
	if lim.PerAppPerHour == 0 && lim.PerSubjectPerHour == 0 {
		return 0, true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	w := now.Unix() / 3600
	if w != q.window {
		q.window, q.counts = w, map[string]int{}
	}
	ka, ks := app+"\x00", app+"\x00"+sub
	if (lim.PerAppPerHour > 0 && q.counts[ka] >= lim.PerAppPerHour) ||
		(lim.PerSubjectPerHour > 0 && q.counts[ks] >= lim.PerSubjectPerHour) {
		return time.Unix((w+1)*3600, 0).Sub(now), false
	}
	q.counts[ka]++
	q.counts[ks]++
	return 0, true
}
