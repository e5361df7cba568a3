package lease

import (
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/policy"
)

// quotaCounter enforces the policy's per-app quotas in fixed one-hour
// windows. It is per process: with several replicas each enforces the
// quota on its own share (a shared-store counter would implement the same
// take method).
type quotaCounter struct {
	mu     sync.Mutex
	window int64          // current window, hours since the epoch
	counts map[string]int // "app\x00" and "app\x00sub" -> leases this window
}

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
