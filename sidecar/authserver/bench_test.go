package authserver

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
)

// Token endpoint latency through real HTTP on loopback: a DPoP device-code
// redemption, and a refresh, with the durable (fsynced) bbolt store and,
// to show what the fsyncs cost, without. Each op includes making the
// client's DPoP proof.
func BenchmarkTokenEndpoint(b *testing.B) {
	for _, sync := range []bool{true, false} {
		name := "fsync"
		if !sync {
			name = "nosync"
		}
		b.Run("device_code/"+name, func(b *testing.B) {
			h := benchHarness(b, sync)
			k := newKey(b)
			ctx := context.Background()
			codes := make([]string, b.N)
			for i := range codes {
				d := h.authorize("demo-app", k)
				if err := h.s.Approve(ctx, d.UserCode, "alice", "bench"); err != nil {
					b.Fatal(err)
				}
				codes[i] = d.DeviceCode
			}
			b.ResetTimer()
			for i := range b.N {
				if r := h.poll("demo-app", codes[i], k); r.status != 200 {
					b.Fatalf("%d %s", r.status, r.raw)
				}
			}
		})
		b.Run("refresh/"+name, func(b *testing.B) {
			h := benchHarness(b, sync)
			k := newKey(b)
			rt := h.tokens(k).str("refresh_token")
			b.ResetTimer()
			for range b.N {
				r := h.post("/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}, "refresh_token": {rt}}, k)
				if r.status != 200 {
					b.Fatalf("%d %s", r.status, r.raw)
				}
				rt = r.str("refresh_token")
			}
		})
	}
}

func benchHarness(b *testing.B, sync bool) *harness {
	h := newHarness(b, nil)
	if !sync {
		h.stop()
		h.startWith(boltstore.Options{NoSync: true, Now: h.clk.now})
	}
	// Many device codes: keep the guessing and polling limits out of it.
	h.s.pollLimiter = newFailureLimiter(1<<30, time.Hour, defaultMaxSources)
	h.s.authzPerSource = ratelimit.Limit{Rate: 1e9, Burst: 1 << 30}
	h.s.maxPending = 1 << 30
	return h
}
