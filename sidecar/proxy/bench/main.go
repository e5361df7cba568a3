// Command bench compares the keyless proxy, with every check on (lease
// verification through the token cache, a fresh ES256 DPoP proof per
// request, replay cache, revocation, scope, audit line), against a bare
// httputil.ReverseProxy on the same upstream, with the same load generator,
// in one run on loopback, bounded in time. It prints requests/s and p50/p99
// latency for both at peak (closed loop) and at half the bare proxy's peak
// rate (open loop), their ratios, memory under load, and the replay
// cache's bytes per entry and GC pause at one million live entries.
//
//	go run ./sidecar/proxy/bench            # about 20 s
//	go run ./sidecar/proxy/bench -d 2s      # shorter phases
//	go run ./sidecar/proxy/bench -redis     # also: the same proxy on a Redis store
//
// With -redis it starts a redis-server of its own on a free loopback port
// (or uses -store URL) and adds the proxy with every piece of shared state
// in Redis (replay, revocations, rate limits, nonce key), side by side
// with the embedded store (target: at least 0.8x of its throughput).
//
// Proofs are signed before each timed phase, so the load generator's own
// ECDSA signing does not compete with the proxy for CPU.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/proxy"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

const publicURL = "http://bench.keyless.test"

func main() {
	dur := flag.Duration("d", 3*time.Second, "duration of each timed phase")
	workers := flag.Int("c", 32, "concurrent connections at peak")
	entries := flag.Int("replay-entries", 1_000_000, "live replay-cache entries for the memory/GC measurement (0 skips it)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	withRedis := flag.Bool("redis", false, "also measure the proxy on a Redis store (starts redis-server unless -store is set)")
	storeURL := flag.String("store", "", "Redis URL for -redis instead of starting a redis-server")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var st *redisstore.Store
	if *withRedis {
		u := *storeURL
		if u == "" {
			addr, stop, err := startRedis()
			if err != nil {
				log.Fatal(err)
			}
			defer stop()
			u = "redis://" + addr + "/0"
		}
		var err error
		if st, err = redisstore.New(u, redisstore.Options{}); err != nil {
			log.Fatal(err)
		}
		defer st.Close()
		// A fresh store is unseeded: the bench has no issuer, so it seeds an
		// empty revocation list itself.
		if err := st.Reseed(context.Background(), nil); err != nil {
			log.Fatal(err)
		}
	}
	if err := run(*dur, *workers, *entries, st); err != nil {
		log.Print(err)
	}
}

func run(dur time.Duration, workers, entries int, st *redisstore.Store) error {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true,"items":[1,2,3]}`)
	}))
	defer upstream.Close()

	// The bare proxy gets the same tuned transport, so the ratio measures
	// the checks, not connection pooling.
	u, _ := url.Parse(upstream.URL)
	bare := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second},
	}
	bareSrv := httptest.NewServer(bare)
	defer bareSrv.Close()

	ctx := context.Background()
	keys, err := token.NewKeySet(time.Now())
	if err != nil {
		return err
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := dpop.NewECDSASigner(key)
	minter := &token.Minter{Keys: keys, Issuer: "https://auth.bench.test"}
	lease, _, err := minter.Issue(ctx, token.Spec{
		Subject: "bench", Audience: []string{publicURL}, ClientID: "bench", Scope: []string{"bench:read"},
		JKT: signer.PublicJWK().Thumbprint(), LeaseID: "lease-bench", TTL: time.Hour,
	})
	if err != nil {
		return err
	}
	cfg := proxy.Config{
		PublicURL: publicURL,
		Upstreams: map[string]proxy.Upstream{"up": {URL: upstream.URL}},
		Routes:    []proxy.Route{{Name: "bench", Path: "/bench", Upstream: "up", Scopes: []string{"bench:read"}}},
	}
	// One key sends every proof: its replay quota would refuse it past a
	// legitimate client's rate, which is what this benchmark exceeds on
	// purpose.
	cfg.DPoP.ReplayPerKey = -1
	replay := &memstore.Replay{}
	p, err := proxy.New(cfg, proxy.Options{
		Tokens: &token.JWTVerifier{Keys: keys, Issuer: "https://auth.bench.test", Audience: publicURL},
		Replay: replay,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	fullSrv := httptest.NewServer(p)
	defer fullSrv.Close()
	var redisSrv *httptest.Server
	if st != nil {
		rp, err := proxy.New(cfg, proxy.Options{
			Tokens: &token.JWTVerifier{Keys: keys, Issuer: "https://auth.bench.test", Audience: publicURL},
			Replay: st, Revocations: st, Limiter: st, NonceKey: st,
			Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		})
		if err != nil {
			return err
		}
		redisSrv = httptest.NewServer(rp)
		defer redisSrv.Close()
	}

	proofs := func(n int) []string {
		out := make([]string, n)
		var wg sync.WaitGroup
		per := (n + runtime.NumCPU() - 1) / runtime.NumCPU()
		for s := 0; s < n; s += per {
			wg.Add(1)
			go func(s int) {
				defer wg.Done()
				for i := s; i < min(s+per, n); i++ {
					out[i], _ = dpop.NewProof(signer, "GET", publicURL+"/bench", dpop.ProofOptions{AccessToken: lease})
				}
			}(s)
		}
		wg.Wait()
		return out
	}
	bareReq := func(int) (*http.Request, bool) {
		r, _ := http.NewRequest("GET", bareSrv.URL+"/bench", nil)
		return r, true
	}
	reqTo := func(base string, ps []string) func(int) (*http.Request, bool) {
		return func(i int) (*http.Request, bool) {
			if i >= len(ps) {
				return nil, false
			}
			r, _ := http.NewRequest("GET", base+"/bench", nil)
			r.Host = strings.TrimPrefix(publicURL, "http://") // the proxy serves its public host only
			r.Header.Set("Authorization", "DPoP "+lease)
			r.Header.Set("DPoP", ps[i])
			return r, true
		}
	}
	fullReq := func(ps []string) func(int) (*http.Request, bool) { return reqTo(fullSrv.URL, ps) }
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, DisableCompression: true}}

	fmt.Printf("keyless proxy benchmark: %d CPUs, GOMAXPROCS %d, %s, %d connections, %v per phase, loopback\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), workers, dur)
	// Warm up both (connections, JWKS, token cache).
	closedLoop(client, bareReq, workers, dur/4)
	closedLoop(client, fullReq(proofs(2000)), workers, dur/4)

	bareRes := closedLoop(client, bareReq, workers, dur)
	// Enough proofs for 1.5x the bare proxy's rate: the full proxy cannot
	// go faster than the bare one.
	need := int(bareRes.rps*dur.Seconds()*1.5) + 1000
	fullRes := closedLoop(client, fullReq(proofs(need)), workers, dur)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapUnderLoad := ms.HeapInuse

	var redisRes result
	if redisSrv != nil {
		// Redis's restart guard refuses proofs older than the store's start
		// by FutureSkew: wait until a fresh proof passes, then measure.
		for i := 0; i < 100; i++ {
			if r := closedLoop(client, reqTo(redisSrv.URL, proofs(1)), 1, time.Second); r.errors == 0 && r.rps > 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		closedLoop(client, reqTo(redisSrv.URL, proofs(2000)), workers, dur/4)
		redisRes = closedLoop(client, reqTo(redisSrv.URL, proofs(need)), workers, dur)
	}

	rate := bareRes.rps / 2
	bareHalf := openLoop(client, bareReq, workers, rate, dur)
	fullHalf := openLoop(client, fullReq(proofs(int(rate*dur.Seconds())+1000)), workers, rate, dur)

	fmt.Println()
	fmt.Printf("%-34s %12s %10s %10s %8s\n", "phase", "req/s", "p50", "p99", "errors")
	row := func(name string, r result) {
		fmt.Printf("%-34s %12.0f %10s %10s %8d\n", name, r.rps, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.errors)
	}
	row("bare ReverseProxy, peak", bareRes)
	row("keyless proxy (all checks), peak", fullRes)
	if redisSrv != nil {
		row("keyless proxy, Redis store, peak", redisRes)
	}
	row(fmt.Sprintf("bare at %.0f req/s", rate), bareHalf)
	row(fmt.Sprintf("keyless at %.0f req/s", rate), fullHalf)
	fmt.Println()
	fmt.Printf("throughput ratio (keyless / bare):   %.2fx   (target >= 0.5x)\n", fullRes.rps/bareRes.rps)
	if redisSrv != nil {
		fmt.Printf("Redis store / embedded store:        %.2fx   (target >= 0.8x)\n", redisRes.rps/fullRes.rps)
	}
	fmt.Printf("added p99 at half the bare peak:     %v   (target < 1ms)\n", (fullHalf.p99 - bareHalf.p99).Round(time.Microsecond))
	fmt.Printf("heap in use under load:              %.1f MiB (replay cache %d entries)\n", float64(heapUnderLoad)/(1<<20), replay.Len())

	if entries > 0 {
		bytesPer, pause := replayFootprint(entries)
		fmt.Printf("replay cache at %d live entries:  %.0f bytes/entry, GC pause %v (stop-the-world total of one forced GC)\n",
			entries, bytesPer, pause.Round(time.Microsecond))
	}
	return nil
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

func summarize(lat []time.Duration, errs int, el time.Duration) result {
	slices.Sort(lat)
	r := result{errors: errs, rps: float64(len(lat)) / el.Seconds()}
	if len(lat) > 0 {
		r.p50 = lat[len(lat)/2]
		r.p99 = lat[len(lat)*99/100]
	}
	return r
}

func send(c *http.Client, r *http.Request) bool {
	res, err := c.Do(r)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode == 200
}

// closedLoop runs workers that each send the next request as soon as the
// previous one answered, for d or until next runs out.
func closedLoop(c *http.Client, next func(int) (*http.Request, bool), workers int, d time.Duration) result {
	var idx atomic.Int64
	var mu sync.Mutex
	var all []time.Duration
	errs := 0
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			e := 0
			for time.Now().Before(deadline) {
				r, ok := next(int(idx.Add(1) - 1))
				if !ok {
					break
				}
				t0 := time.Now()
				if send(c, r) {
					lat = append(lat, time.Since(t0))
				} else {
					e++
				}
			}
			mu.Lock()
			all = append(all, lat...)
			errs += e
			mu.Unlock()
		}()
	}
	wg.Wait()
	return summarize(all, errs, time.Since(start))
}

// openLoop sends at a fixed rate regardless of answers, for d: a pacer
// schedules requests and a bounded pool of senders takes them; latency is
// measured from the scheduled time, so queueing shows in it (no coordinated
// omission).
func openLoop(c *http.Client, next func(int) (*http.Request, bool), senders int, rate float64, d time.Duration) result {
	interval := time.Duration(float64(time.Second) / rate)
	n := int(d / interval)
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, n)
	var mu sync.Mutex
	var all []time.Duration
	errs := 0
	var wg sync.WaitGroup
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			e := 0
			for j := range jobs {
				r, ok := next(j.i)
				if !ok {
					continue
				}
				if send(c, r) {
					lat = append(lat, time.Since(j.due))
				} else {
					e++
				}
			}
			mu.Lock()
			all = append(all, lat...)
			errs += e
			mu.Unlock()
		}()
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > time.Millisecond {
			time.Sleep(w) // pacing the load generator, not test timing
		}
		jobs <- job{i, due}
	}
	close(jobs)
	wg.Wait()
	return summarize(all, errs, time.Since(start))
}

// replayFootprint fills a memstore replay cache with n live entries, with
// realistic key sizes (43-byte thumbprint, 22-byte jti), and reports heap
// bytes per entry and the pause of one forced GC with them live.
func replayFootprint(n int) (float64, time.Duration) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := &memstore.Replay{Max: n + 1}
	until := time.Now().Add(time.Hour)
	jkt := "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	ctx := context.Background()
	for i := 0; i < n; i++ {
		// A distinct 22-character jti per entry.
		jti := fmt.Sprintf("%022d", i)
		if err := r.Use(ctx, jkt, jti, until); err != nil {
			fmt.Fprintln(os.Stderr, "replay fill:", err)
			break
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	pauseBefore, gcBefore := after.PauseTotalNs, after.NumGC
	runtime.GC()
	runtime.ReadMemStats(&after)
	pause := time.Duration(after.PauseTotalNs - pauseBefore)
	if after.NumGC > gcBefore+1 {
		pause /= time.Duration(after.NumGC - gcBefore)
	}
	runtime.KeepAlive(r)
	return per, pause
}

// startRedis runs a redis-server without persistence on a free loopback
// port and returns its address and a stop function.
func startRedis() (string, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("-redis needs redis-server (apt-get install redis-server) or -store URL: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction")
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for i := 0; i < 100; i++ {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return addr, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("redis-server did not start on %s", addr)
}
