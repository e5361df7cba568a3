package lease

import (
	"bytes"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
)

// BenchmarkLease measures POST /v1/lease end to end over loopback HTTP:
// proof check, subject-token verification with a warm key cache, policy,
// minting and storing the renewal token. It reports p50 and p99 latency.
//
//	go test -run '^$' -bench Lease -benchtime 2000x ./sidecar/lease
func BenchmarkLease(b *testing.B) {
	cases := []struct {
		name string
		opt  func(*harness)
		ext  bool
	}{
		{name: "embedded/mem-renewals", opt: func(h *harness) { h.memRenewals = true }},
		{name: "embedded/bolt-renewals", opt: func(h *harness) {}},
		{name: "external-warm-jwks/mem-renewals", opt: func(h *harness) { h.memRenewals = true }, ext: true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			clk := &clock{T: time.Unix(1_800_000_000, 0)}
			var ext *idp
			opts := []func(*harness){func(h *harness) { h.clk = clk }, c.opt}
			if c.ext {
				ext = newIdPTB(b, clk)
				opts = append(opts, func(h *harness) {
					h.extra = []Issuer{extIssuer(b, ext, "corp", IssuerConfig{IgnoreScope: true, AnyClient: true})}
				})
			}
			h := newHarness(b, opts...)
			k := newKey(b)
			subject := h.login("alice", "other-app", readOnly, k)
			if ext != nil {
				subject = ext.sign(b, with(ext.claims("erin", "other-app"), map[string]any{
					"cnf": map[string]string{"jkt": jkt(k)}, "exp": clk.Now().Add(time.Hour).Unix()}), nil)
			}
			body := []byte(mustJSON(map[string]any{"subject_token": subject, "client_id": "other-app"}))
			// Warm up: the key cache (and, for the external issuer,
			// discovery and JWKS) is filled before timing.
			if r := h.postJSON(PathLease, string(body), k); r.Status != 200 {
				b.Fatalf("warm-up: %d %s", r.Status, r.Raw)
			}
			proofs := make([]string, b.N)
			for i := range proofs {
				p, err := dpop.NewProof(k, http.MethodPost, h.as.Issuer()+PathLease, dpop.ProofOptions{Now: clk.Now()})
				if err != nil {
					b.Fatal(err)
				}
				proofs[i] = p
			}
			client := h.srv.Client()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req, _ := http.NewRequest(http.MethodPost, h.srv.URL+PathLease, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("DPoP", proofs[i])
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				var buf [4096]byte
				for {
					if _, err := resp.Body.Read(buf[:]); err != nil {
						break
					}
				}
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
				if resp.StatusCode != 200 {
					b.Fatalf("lease %d: status %d", i, resp.StatusCode)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()), "p99-µs")
		})
	}
}
