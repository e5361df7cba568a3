package check

import (
	"context"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/token/atjwt"
)

// The per-subject bucket: taken first (a subject's own refusals never
// spend the app's bucket), and keyed by the subject as its issuer names it,
// so an external issuer's alice and keyless's alice do not share one.
func TestTakeRateLimit(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	r := &Route{Name: "orders", RateLimit: &RateLimit{
		PerSubject: ratelimit.Limit{Rate: 0.001, Burst: 1},
		PerApp:     ratelimit.Limit{Rate: 0.001, Burst: 3},
	}}
	lim := &ratelimit.Memory{}
	local := &atjwt.Claims{Subject: "alice", ClientID: "app"}
	corp := &atjwt.Claims{Subject: "alice", ClientID: "app", IdP: "corp"}
	for _, tc := range []struct {
		name      string
		c         *atjwt.Claims
		allowed   bool
		remaining int
	}{
		{"local alice", local, true, 0},
		{"local alice again: her own limit", local, false, 0},
		{"corp's alice has her own bucket", corp, true, 0},
		{"corp's alice again", corp, false, 0},
		// Two refusals above spent nothing of the app's 3: bob takes the third.
		{"bob", &atjwt.Claims{Subject: "bob", ClientID: "app"}, true, 0},
		{"carol: the app's bucket is empty", &atjwt.Claims{Subject: "carol", ClientID: "app"}, false, 0},
	} {
		res, err := TakeRateLimit(ctx, lim, r, tc.c, now)
		if res == nil {
			t.Fatalf("%s: no result", tc.name)
		}
		if res.Allowed != tc.allowed || (err == nil) != tc.allowed {
			t.Errorf("%s: allowed %v, err %v; want allowed %v", tc.name, res.Allowed, err, tc.allowed)
		}
		if err != nil && (err.Code != CodeRateLimited || err.RetryAfter < time.Second) {
			t.Errorf("%s: %+v, want 429 with Retry-After", tc.name, err)
		}
		if res.Remaining != tc.remaining {
			t.Errorf("%s: remaining %d, want %d", tc.name, res.Remaining, tc.remaining)
		}
	}
	if res, err := TakeRateLimit(ctx, lim, &Route{Name: "free"}, local, now); res != nil || err != nil {
		t.Errorf("route without limits: %v %v", res, err)
	}
}
