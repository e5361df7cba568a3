// Command bench compares the keyless proxy, with every check on (lease
// verification through the token cache, a fresh ES256 DPoP proof per
// request, replay cache, revocation, scope, audit line), against a bare
// httputil.ReverseProxy with the same transport settings and buffer pool
// (proxy.Baseline), on the same upstream, with the same load generator, in
// one run on loopback, bounded in time.
//
// Each proxy runs in a child process of its own (this binary with -role),
// so the CPU it spends is read from /proc/<pid>/stat apart from the load
// generator's and the upstream's, and its allocations from its own
// runtime. Phases are interleaved (bare, keyless, keyless on Redis, then
// again, -reps times): on a shared machine the paired ratios of one rep
// are steadier than absolute numbers. It prints requests/s, p50/p99
// latency, CPU microseconds and allocations per request for each, the
// median paired ratios, latency at half the bare proxy's peak rate (open
// loop), memory under load, and the replay cache's bytes per entry and GC
// pause at one million live entries. It fails on no number.
//
//	go run ./sidecar/proxy/bench            # about 40 s
//	go run ./sidecar/proxy/bench -d 2s      # shorter phases
//	go run ./sidecar/proxy/bench -redis     # also: the same proxy on a Redis store
//	make bench-peers                        # instead: beside oauth2-proxy (peers.go)
//
// With -redis it starts a redis-server of its own on a free loopback port
// (or uses -store URL) and adds the proxy with every piece of shared state
// in Redis (replay, revocations, rate limits, nonce key), side by side
// with the embedded store (target: at least 0.8x of its throughput), and
// Redis's own CPU per request when it started the server.
//
// Proofs are signed before each timed phase, so the load generator's own
// ECDSA signing does not compete with the proxy for CPU.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
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

var showErrors = flag.Bool("show-errors", false, "log each refused request's status and body")

const (
	publicHost = "bench.keyless.test"
	publicURL  = "http://" + publicHost
)

func main() {
	dur := flag.Duration("d", 3*time.Second, "duration of each timed phase")
	reps := flag.Int("reps", 3, "interleaved repetitions of the peak phases")
	workers := flag.Int("c", 32, "concurrent connections at peak")
	entries := flag.Int("replay-entries", 1_000_000, "live replay-cache entries for the memory/GC measurement (0 skips it)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the keyless proxy process to this file")
	withRedis := flag.Bool("redis", false, "also measure the proxy on a Redis store (starts redis-server unless -store is set)")
	storeURL := flag.String("store", "", "Redis URL for -redis instead of starting a redis-server")
	role := flag.String("role", "", "internal: run one proxy (bare, keyless, redis) for the parent")
	upstreamURL := flag.String("upstream", "", "internal: the upstream URL for -role")
	jkt := flag.String("jkt", "", "internal: the thumbprint the child's lease is bound to")
	peers := flag.Bool("peers", false, "instead: keyless beside oauth2-proxy and the bare proxy (see peers.go)")
	o2pBin := flag.String("oauth2-proxy", ".cache/bin/oauth2-proxy", "the oauth2-proxy program for -peers (make oauth2-proxy)")
	nginxBin := flag.String("nginx", "/usr/sbin/nginx", "with -peers: nginx as the non-Go floor, when this file exists")
	flag.Parse()
	if *role != "" {
		if err := child(*role, *upstreamURL, *jkt, *storeURL, *cpuprofile); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *peers {
		if err := runPeers(*o2pBin, *nginxBin, *dur, *reps, *workers); err != nil {
			log.Fatal(err)
		}
		return
	}
	var redisPID int
	u := ""
	if *withRedis {
		u = *storeURL
		if u == "" {
			addr, pid, stop, err := startRedis()
			if err != nil {
				log.Fatal(err)
			}
			defer stop()
			u, redisPID = "redis://"+addr+"/0", pid
		}
	}
	if err := run(*dur, *reps, *workers, *entries, u, redisPID, *cpuprofile); err != nil {
		log.Print(err)
	}
}

// hello is what a child prints once it serves: its proxy's and its
// control endpoint's addresses, and the lease it minted.
type hello struct {
	Addr, Ctl, Lease string
}

// stats is a child's runtime counters, read before and after a phase.
type stats struct {
	Mallocs, TotalAlloc, HeapInuse uint64
	ReplayLen                      int
}

func benchConfig(upstreamURL string) proxy.Config {
	cfg := proxy.Config{
		PublicURL: publicURL,
		Upstreams: map[string]proxy.Upstream{"up": {URL: upstreamURL}},
		Routes:    []proxy.Route{{Name: "bench", Path: "/bench", Upstream: "up", Scopes: []string{"bench:read"}}},
	}
	// One key sends every proof: its replay quota would refuse it past a
	// legitimate client's rate, which is what this benchmark exceeds on
	// purpose.
	cfg.DPoP.ReplayPerKey = -1
	return cfg
}

// child runs one proxy until its stdin closes.
func child(role, upstreamURL, jkt, storeURL, cpuprofile string) error {
	ctx := context.Background()
	keys, err := token.NewKeySet(time.Now())
	if err != nil {
		return err
	}
	minter := &token.Minter{Keys: keys, Issuer: "https://auth.bench.test"}
	lease, _, err := minter.Issue(ctx, token.Spec{
		Subject: "bench", Audience: []string{publicURL}, ClientID: "bench", Scope: []string{"bench:read"},
		JKT: jkt, LeaseID: "lease-bench", TTL: time.Hour,
	})
	if err != nil {
		return err
	}
	cfg := benchConfig(upstreamURL)
	replay := &memstore.Replay{}
	var h http.Handler
	switch role {
	case "bare":
		if h, err = proxy.Baseline(cfg, "up"); err != nil {
			return err
		}
	case "keyless", "redis":
		opts := proxy.Options{
			Tokens: &token.JWTVerifier{Keys: keys, Issuer: "https://auth.bench.test", Audience: publicURL},
			Replay: replay,
			Logger: proxy.NewAuditLogger(io.Discard),
		}
		if role == "redis" {
			st, err := redisstore.New(storeURL, redisstore.Options{})
			if err != nil {
				return err
			}
			defer st.Close()
			// The bench is this store's first deployment and has no
			// issuer: it declares the store fresh and seeds an empty
			// revocation list itself.
			if err := st.InitEpoch(ctx, time.Now().Add(-time.Hour)); err != nil {
				return err
			}
			if err := st.Reseed(ctx, nil); err != nil {
				return err
			}
			opts.Replay, opts.Revocations, opts.Limiter, opts.NonceKey = st, st, st, st
		}
		if h, err = proxy.New(cfg, opts); err != nil {
			return err
		}
		if cpuprofile != "" {
			f, err := os.Create(cpuprofile)
			if err != nil {
				return err
			}
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(ln, h)
	go http.Serve(ctl, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		json.NewEncoder(w).Encode(stats{ms.Mallocs, ms.TotalAlloc, ms.HeapInuse, replay.Len()})
	}))
	if err := json.NewEncoder(os.Stdout).Encode(hello{ln.Addr().String(), ctl.Addr().String(), lease}); err != nil {
		return err
	}
	io.Copy(io.Discard, os.Stdin) // until the parent closes it or exits
	return nil
}

// proc is a running child proxy.
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.Closer
	hello
}

func startChild(role, upstreamURL, jkt, storeURL, cpuprofile string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-role", role, "-upstream", upstreamURL, "-jkt", jkt}
	if storeURL != "" {
		args = append(args, "-store", storeURL)
	}
	if cpuprofile != "" {
		args = append(args, "-cpuprofile", cpuprofile)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: role, cmd: cmd, stdin: in}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &p.hello)
	}
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("bench: %s proxy did not start: %w", role, err)
	}
	return p, nil
}

// stop closes the child's stdin, which ends it, and waits (bounded).
func (p *proc) stop() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func (p *proc) stats() stats {
	var s stats
	res, err := http.Get("http://" + p.Ctl + "/")
	if err != nil {
		return s
	}
	defer res.Body.Close()
	json.NewDecoder(res.Body).Decode(&s)
	return s
}

// cpuTicks is the CPU time pid has used, user plus system, in clock ticks
// (/proc/<pid>/stat fields 14 and 15, proc(5)).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("bench: unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("bench: short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	return ut + st, errors.Join(err1, err2)
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// measured is one phase of one proxy: load results and what the proxy
// process (and Redis, when it was part of it) spent on it.
type measured struct {
	result
	cpuPerReq, redisCPUPerReq time.Duration
	allocsPerReq, bytesPerReq float64
	heapInuse                 uint64
	replayLen                 int
}

// phase runs fn against p and reads p's (and redisPID's, if not zero) CPU
// and allocations around it.
func phase(p *proc, redisPID int, fn func() result) measured {
	s0 := p.stats()
	c0, _ := cpuTicks(p.cmd.Process.Pid)
	var r0 int64
	if redisPID != 0 {
		r0, _ = cpuTicks(redisPID)
	}
	r := fn()
	c1, _ := cpuTicks(p.cmd.Process.Pid)
	var r1 int64
	if redisPID != 0 {
		r1, _ = cpuTicks(redisPID)
	}
	s1 := p.stats()
	m := measured{result: r, heapInuse: s1.HeapInuse, replayLen: s1.ReplayLen}
	if n := r.requests(); n > 0 {
		m.cpuPerReq = time.Duration(c1-c0) * clockTick / time.Duration(n)
		m.redisCPUPerReq = time.Duration(r1-r0) * clockTick / time.Duration(n)
		// The control request itself allocates a little; it is noise
		// against thousands of requests.
		m.allocsPerReq = float64(s1.Mallocs-s0.Mallocs) / float64(n)
		m.bytesPerReq = float64(s1.TotalAlloc-s0.TotalAlloc) / float64(n)
	}
	return m
}

func run(dur time.Duration, reps, workers, entries int, storeURL string, redisPID int, cpuprofile string) error {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true,"items":[1,2,3]}`)
	}))
	defer upstream.Close()

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := dpop.NewECDSASigner(key)
	jkt := signer.PublicJWK().Thumbprint()

	bare, err := startChild("bare", upstream.URL, jkt, "", "")
	if err != nil {
		return err
	}
	defer bare.stop()
	full, err := startChild("keyless", upstream.URL, jkt, "", cpuprofile)
	if err != nil {
		return err
	}
	defer full.stop()
	var onRedis *proc
	if storeURL != "" {
		if onRedis, err = startChild("redis", upstream.URL, jkt, storeURL, ""); err != nil {
			return err
		}
		defer onRedis.stop()
	}

	proofs := func(lease string, n int) []string {
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
		r, _ := http.NewRequest("GET", "http://"+bare.Addr+"/bench", nil)
		r.Host = publicHost
		return r, true
	}
	reqTo := func(p *proc, ps []string) func(int) (*http.Request, bool) {
		return func(i int) (*http.Request, bool) {
			if i >= len(ps) {
				return nil, false
			}
			r, _ := http.NewRequest("GET", "http://"+p.Addr+"/bench", nil)
			r.Host = publicHost // the proxy answers 421 to any other
			r.Header.Set("Authorization", "DPoP "+p.Lease)
			r.Header.Set("DPoP", ps[i])
			return r, true
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, DisableCompression: true}}

	fmt.Printf("keyless proxy benchmark: %d CPUs, %s, %d connections, %v per phase, %d interleaved reps, loopback\n",
		runtime.NumCPU(), runtime.Version(), workers, dur, reps)
	fmt.Printf("each proxy in its own process (GOGC=%q GOMEMLIMIT=%q), CPU from /proc/<pid>/stat\n",
		os.Getenv("GOGC"), os.Getenv("GOMEMLIMIT"))
	// Warm up every proxy (connections, token cache).
	closedLoop(client, bareReq, workers, dur/4)
	closedLoop(client, reqTo(full, proofs(full.Lease, 2000)), workers, dur/4)
	if onRedis != nil {
		closedLoop(client, reqTo(onRedis, proofs(onRedis.Lease, 2000)), workers, dur/4)
	}

	var bares, fulls, redises []measured
	for range reps {
		b := phase(bare, 0, func() result { return closedLoop(client, bareReq, workers, dur) })
		bares = append(bares, b)
		// Enough proofs for 1.5x the bare proxy's rate: keyless cannot
		// go faster than the bare one.
		need := int(b.rps*dur.Seconds()*1.5) + 1000
		ps := proofs(full.Lease, need)
		fulls = append(fulls, phase(full, 0, func() result { return closedLoop(client, reqTo(full, ps), workers, dur) }))
		if onRedis != nil {
			ps := proofs(onRedis.Lease, need)
			redises = append(redises, phase(onRedis, redisPID, func() result { return closedLoop(client, reqTo(onRedis, ps), workers, dur) }))
		}
	}

	rate := bares[len(bares)-1].rps / 2
	bareHalf := openLoop(client, bareReq, workers, rate, dur)
	fullHalf := openLoop(client, reqTo(full, proofs(full.Lease, int(rate*dur.Seconds())+1000)), workers, rate, dur)

	fmt.Println()
	fmt.Printf("%-36s %9s %9s %9s %6s %9s %8s %9s\n", "phase", "req/s", "p50", "p99", "errors", "CPU/req", "allocs", "B/req")
	row := func(name string, m measured) {
		fmt.Printf("%-36s %9.0f %9s %9s %6d %7.0fµs %8.1f %9.0f\n", name, m.rps, m.p50.Round(time.Microsecond), m.p99.Round(time.Microsecond),
			m.errors, float64(m.cpuPerReq.Nanoseconds())/1e3, m.allocsPerReq, m.bytesPerReq)
	}
	for i := range bares {
		row(fmt.Sprintf("rep %d: bare ReverseProxy (pooled)", i+1), bares[i])
		row(fmt.Sprintf("rep %d: keyless (all checks)", i+1), fulls[i])
		if onRedis != nil {
			row(fmt.Sprintf("rep %d: keyless, Redis store", i+1), redises[i])
		}
	}
	fmt.Printf("%-36s %9.0f %9s %9s %6d\n", fmt.Sprintf("bare at %.0f req/s", rate), bareHalf.rps, bareHalf.p50.Round(time.Microsecond), bareHalf.p99.Round(time.Microsecond), bareHalf.errors)
	fmt.Printf("%-36s %9.0f %9s %9s %6d\n", fmt.Sprintf("keyless at %.0f req/s", rate), fullHalf.rps, fullHalf.p50.Round(time.Microsecond), fullHalf.p99.Round(time.Microsecond), fullHalf.errors)

	ratio := func(a, b []measured, f func(measured) float64) float64 {
		var rs []float64
		for i := range a {
			if f(b[i]) > 0 {
				rs = append(rs, f(a[i])/f(b[i]))
			}
		}
		return median(rs)
	}
	rps := func(m measured) float64 { return m.rps }
	cpu := func(m measured) float64 { return float64(m.cpuPerReq.Nanoseconds()) / 1e3 }
	col := func(ms []measured, f func(measured) float64) float64 {
		var v []float64
		for _, m := range ms {
			v = append(v, f(m))
		}
		return median(v)
	}
	fmt.Println()
	fmt.Println("medians over the reps (ratios paired within a rep):")
	fmt.Printf("throughput ratio (keyless / pooled bare): %.2fx   (target >= 0.5x)\n", ratio(fulls, bares, rps))
	fmt.Printf("CPU per request, keyless:                 %.0f µs   (target <= 300 µs)\n", col(fulls, cpu))
	fmt.Printf("CPU per request, pooled bare:             %.0f µs   (keyless's checks: %.0f µs)\n", col(bares, cpu), col(fulls, cpu)-col(bares, cpu))
	fmt.Printf("allocations per request, keyless / bare:  %.0f / %.0f   (%.0f / %.0f bytes)\n",
		col(fulls, func(m measured) float64 { return m.allocsPerReq }), col(bares, func(m measured) float64 { return m.allocsPerReq }),
		col(fulls, func(m measured) float64 { return m.bytesPerReq }), col(bares, func(m measured) float64 { return m.bytesPerReq }))
	if onRedis != nil {
		fmt.Printf("Redis store / embedded store:             %.2fx   (target >= 0.8x)\n", ratio(redises, fulls, rps))
		fmt.Printf("CPU per request, keyless on Redis:        %.0f µs in the proxy", col(redises, cpu))
		if redisPID != 0 {
			fmt.Printf(", %.0f µs in redis-server", col(redises, func(m measured) float64 { return float64(m.redisCPUPerReq.Nanoseconds()) / 1e3 }))
		}
		fmt.Println()
	}
	fmt.Printf("added p99 at half the bare peak:          %v   (target < 1ms)\n", (fullHalf.p99 - bareHalf.p99).Round(time.Microsecond))
	last := fulls[len(fulls)-1]
	fmt.Printf("keyless heap in use under load:           %.1f MiB (replay cache %d entries)\n", float64(last.heapInuse)/(1<<20), last.replayLen)

	if entries > 0 {
		bytesPer, pause := replayFootprint(entries)
		fmt.Printf("replay cache at %d live entries:  %.0f bytes/entry, GC pause %v (stop-the-world total of one forced GC)\n",
			entries, bytesPer, pause.Round(time.Microsecond))
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
	ok       int
}

// requests is how many requests the proxy answered, well or not.
func (r result) requests() int { return r.ok + r.errors }

func summarize(lat []time.Duration, errs int, el time.Duration) result {
	slices.Sort(lat)
	r := result{errors: errs, ok: len(lat), rps: float64(len(lat)) / el.Seconds()}
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
	if res.StatusCode != 200 && *showErrors {
		b, _ := io.ReadAll(res.Body)
		log.Printf("%d %s %s", res.StatusCode, res.Header.Get("WWW-Authenticate"), b)
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
// port and returns its address, its process id and a stop function.
func startRedis() (string, int, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", 0, nil, fmt.Errorf("-redis needs redis-server (apt-get install redis-server) or -store URL: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, nil, err
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction")
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for i := 0; i < 100; i++ {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return addr, cmd.Process.Pid, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", 0, nil, fmt.Errorf("redis-server did not start on %s", addr)
}
