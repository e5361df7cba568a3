package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/internal/oauthtest"
	"github.com/keyless-dev/keyless/sidecar/store/pgstore/pgtest"
)

// envRunMain makes the test binary run keyless itself (main) instead of
// the tests: the replica tests start `keyless serve` processes they can
// SIGKILL.
const envRunMain = "KEYLESS_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		os.Exit(0)
	}
	pgtest.Main(m)
}

// pgReplica is one `keyless serve --db` process.
type pgReplica struct {
	t        *testing.T
	args     []string
	dir      string
	cmd      *exec.Cmd
	addr     string // public listener, host:port
	adminURL string
	done     chan struct{}
}

var listeningRE = regexp.MustCompile(`listening on (\S+) \(admin API and /healthz /readyz /metrics on (\S+)\)`)

// startPGReplica runs keyless serve in a child process, until the test
// ends or it is killed.
func startPGReplica(t *testing.T, cfgPath, dir, db string) *pgReplica {
	t.Helper()
	r := &pgReplica{t: t, dir: dir, args: []string{"serve", "--config", cfgPath, "--data", dir, "--db", db,
		"--issuer-addr", "127.0.0.1:0", "--assets", ""}}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *pgReplica) start() {
	t := r.t
	t.Helper()
	cmd := exec.Command(os.Args[0], r.args...)
	cmd.Env = append(os.Environ(), envRunMain+"=1", dbEnv+"=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut syncBuffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(r.done) }()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				lines <- sc.Text()
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-lines:
		m := listeningRE.FindStringSubmatch(l)
		r.addr, r.adminURL = m[1], m[2]
	case <-r.done:
		t.Fatalf("keyless serve exited: %s", errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("keyless serve did not start: %s", errOut.String())
	}
}

// kill SIGKILLs the process: no shutdown, no flush, as a crash.
func (r *pgReplica) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		<-r.done
	}
}

func (r *pgReplica) url() string { return "http://" + r.addr }

// roundRobin is a loopback load balancer over the replicas' public
// listeners; the backends can be swapped as replicas die and restart.
type roundRobin struct {
	srv  *httptest.Server
	mu   sync.Mutex
	back []string
	n    atomic.Uint64
}

func newRoundRobin(t *testing.T) *roundRobin {
	lb := &roundRobin{}
	lb.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		lb.mu.Lock()
		back := lb.back[int(lb.n.Add(1))%len(lb.back)]
		lb.mu.Unlock()
		u, _ := url.Parse("http://" + back)
		p := httputil.NewSingleHostReverseProxy(u)
		p.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
		p.ServeHTTP(w, req)
	}))
	lb.srv.Start()
	t.Cleanup(lb.srv.Close)
	return lb
}

func (lb *roundRobin) set(backs ...string) { lb.mu.Lock(); lb.back = backs; lb.mu.Unlock() }

// pgCluster is two serve replicas on one database behind a round-robin.
type pgCluster struct {
	lb     *roundRobin
	issuer string // the load balancer's URL: issuer.url of every replica
	r      [2]*pgReplica
	db     string // the database URL
	cfg    string
}

func startPGCluster(t *testing.T, db string) *pgCluster {
	t.Helper()
	c := &pgCluster{lb: newRoundRobin(t), db: db}
	c.issuer = c.lb.srv.URL
	c.cfg = filepath.Join(t.TempDir(), "keyless.yaml")
	if err := os.WriteFile(c.cfg, []byte(fmt.Sprintf(serveConfig, c.issuer)), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range c.r {
		c.r[i] = startPGReplica(t, c.cfg, t.TempDir(), db)
	}
	c.lb.set(c.r[0].addr, c.r[1].addr)
	return c
}

// post sends a form to base+path with, when k is set, a DPoP proof for
// the issuer's URL of path (whichever replica receives it). A 502 from the
// balancer (a dead replica) is retried, as a client would.
func (c *pgCluster) post(t testing.TB, base, path string, form url.Values, k dpop.Signer) oauthtest.Response {
	for attempt := 0; ; attempt++ {
		req := oauthtest.FormRequest(base+path, form)
		if k != nil {
			req.Header.Set("DPoP", oauthtest.Proof(t, k, c.issuer+path, time.Now()))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if attempt < 5 {
				continue
			}
			t.Errorf("POST %s: %v", path, err)
			return oauthtest.Response{}
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r := oauthtest.Response{Status: resp.StatusCode, Header: resp.Header, Raw: string(b)}
		_ = json.Unmarshal(b, &r.Body)
		if r.Status == http.StatusBadGateway && attempt < 5 {
			continue
		}
		return r
	}
}

// startFlow starts a device flow at base and has alice approve it through
// the admin API of the replica whose data dir is dir.
func (c *pgCluster) startFlow(t *testing.T, base, dir string) string {
	t.Helper()
	d := c.post(t, base, "/device_authorization", url.Values{"client_id": {"demo-app"}}, nil)
	if d.Status != 200 {
		t.Fatalf("device authorization: %d %s", d.Status, d.Raw)
	}
	if _, stderr, err := run("approve", d.Str("user_code"), "--data", dir, "--as", "alice"); err != nil {
		t.Fatalf("approve: %v %s", err, stderr)
	}
	return d.Str("device_code")
}

// c2r alternates: a for even i, b for odd.
func c2r(i int, a, b *pgReplica) *pgReplica {
	if i%2 == 0 {
		return a
	}
	return b
}

func deviceGrant(code string) url.Values {
	return url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {code}, "client_id": {"demo-app"}}
}

func refreshGrant(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"demo-app"}}
}

func (c *pgCluster) jwks(t *testing.T, i int) string {
	t.Helper()
	resp, err := http.Get(c.r[i].url() + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestServeReplicasPostgres: two `keyless serve --db` processes on one
// real PostgreSQL behind a loopback round-robin keep the single process's
// guarantees (docs/deployment-ha.md).
func TestServeReplicasPostgres(t *testing.T) {
	c := startPGCluster(t, pgtest.NewDB(t))
	key := newKey(t)
	a, b := c.r[0], c.r[1]

	if ja, jb := c.jwks(t, 0), c.jwks(t, 1); ja != jb || !strings.Contains(ja, `"kid"`) {
		t.Fatalf("replicas started with different JWKS:\n%s\n%s", ja, jb)
	}

	// A device flow started on one replica, approved and polled on the
	// other.
	code := c.startFlow(t, a.url(), b.dir)
	tok := c.post(t, b.url(), "/token", deviceGrant(code), key)
	if tok.Status != 200 || tok.Str("access_token") == "" {
		t.Fatalf("token on the other replica: %d %s", tok.Status, tok.Raw)
	}
	rt := tok.Str("refresh_token")
	var reused string // a refresh token of a family revoked for reuse

	t.Run("OneRedemption", func(t *testing.T) {
		code := c.startFlow(t, c.issuer, a.dir)
		var ok atomic.Int32
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r := c.post(t, c.issuer, "/token", deviceGrant(code), key); r.Status == 200 {
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := ok.Load(); n != 1 {
			t.Fatalf("%d of 50 concurrent redemptions through two replicas got a token, want exactly 1", n)
		}
	})

	t.Run("RefreshReuseRevokesFamily", func(t *testing.T) {
		code := c.startFlow(t, c.issuer, a.dir)
		first := c.post(t, c.issuer, "/token", deviceGrant(code), key)
		if first.Status != 200 {
			t.Fatalf("token: %d %s", first.Status, first.Raw)
		}
		old := first.Str("refresh_token")
		var wg sync.WaitGroup
		res := make([]oauthtest.Response, 2)
		for i, r := range []*pgReplica{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); res[i] = c.post(t, r.url(), "/token", refreshGrant(old), key) }()
		}
		wg.Wait()
		var winner string
		n := 0
		for _, r := range res {
			if r.Status == 200 {
				n++
				winner = r.Str("refresh_token")
			} else if r.Status != 400 || r.Str("error") != "invalid_grant" {
				t.Errorf("the other use: %d %s, want 400 invalid_grant", r.Status, r.Raw)
			}
		}
		if n != 1 {
			t.Fatalf("%d of 2 simultaneous uses of one refresh token succeeded, want 1", n)
		}
		reused = winner
		// Reuse was detected: the family is revoked, the winner's new
		// refresh token too, on both replicas.
		for _, r := range []*pgReplica{a, b} {
			if got := c.post(t, r.url(), "/token", refreshGrant(winner), key); got.Status != 400 {
				t.Errorf("rotated token of a reused family on %s: %d %s, want 400", r.addr, got.Status, got.Raw)
			}
		}
	})

	t.Run("RotationServedByBoth", func(t *testing.T) {
		tokenB, err := os.ReadFile(filepath.Join(a.dir, adminTokenFile))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, a.adminURL+"/admin/v1/keys/rotate", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tokenB)))
		resp := oauthtest.Do(t, http.DefaultClient, req)
		kid := resp.Str("kid")
		if resp.Status != 200 || kid == "" {
			t.Fatalf("rotate: %d %s", resp.Status, resp.Raw)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(c.jwks(t, 1), kid) {
			if time.Now().After(deadline) {
				t.Fatalf("the other replica does not publish the new key %s", kid)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// A token signed with the new key by one replica is accepted
		// by the other (introspection through its own verifier is
		// exercised by the refresh grant, which reads its record).
		code := c.startFlow(t, a.url(), a.dir)
		if r := c.post(t, a.url(), "/token", deviceGrant(code), key); r.Status != 200 {
			t.Fatalf("token after rotation: %d %s", r.Status, r.Raw)
		} else if got := c.post(t, b.url(), "/token", refreshGrant(r.Str("refresh_token")), key); got.Status != 200 {
			t.Fatalf("refresh on the other replica after rotation: %d %s", got.Status, got.Raw)
		}
	})

	t.Run("KeysCommandOnDatabase", func(t *testing.T) {
		// `keyless keys rotate --db` from a machine without a running
		// replica rotates in the database; both replicas adopt it.
		out, stderr, err := run("keys", "rotate", "--data", t.TempDir(), "--db", c.db)
		if err != nil || !strings.Contains(out, "rotated") {
			t.Fatalf("keys rotate --db: %q %v %s", out, err, stderr)
		}
		m := regexp.MustCompile(`new signing key ([A-Za-z0-9_-]+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("keys rotate --db said %q", out)
		}
		kid := m[1]
		deadline := time.Now().Add(10 * time.Second)
		for i := range c.r {
			for !strings.Contains(c.jwks(t, i), kid) {
				if time.Now().After(deadline) {
					t.Fatalf("replica %d does not publish %s", i, kid)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		if out, _, err := run("keys", "list", "--data", t.TempDir(), "--db", c.db); err != nil || !strings.Contains(out, kid+" ") {
			t.Fatalf("keys list --db: %q %v", out, err)
		}
	})

	t.Run("ProofReplayAcrossReplicas", func(t *testing.T) {
		// One DPoP proof, used at one replica, is a replay at the other.
		code := c.startFlow(t, a.url(), a.dir)
		proof := oauthtest.Proof(t, key, c.issuer+"/token", time.Now())
		send := func(r *pgReplica, form url.Values) oauthtest.Response {
			req := oauthtest.FormRequest(r.url()+"/token", form)
			req.Header.Set("DPoP", proof)
			return oauthtest.Do(t, http.DefaultClient, req)
		}
		if r := send(a, deviceGrant(code)); r.Status != 200 {
			t.Fatalf("first use: %d %s", r.Status, r.Raw)
		} else if r2 := send(b, refreshGrant(r.Str("refresh_token"))); r2.Status != 400 || r2.Str("error") != "invalid_dpop_proof" {
			t.Fatalf("the same proof at the other replica: %d %s, want 400 invalid_dpop_proof", r2.Status, r2.Raw)
		}
	})

	t.Run("SharedUserCodeBudget", func(t *testing.T) {
		// Wrong user codes from one source, alternating replicas: the
		// source has one budget (5), not one per replica.
		get := func(r *pgReplica, code string) int {
			resp, err := http.Get(r.url() + "/device?user_code=" + code)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for i, c := range "BCDFG" {
			if s := get(c2r(i, a, b), "BBBB-BBB"+string(c)); s != 400 {
				t.Fatalf("wrong guess %d: %d, want 400", i+1, s)
			}
		}
		for i, r := range []*pgReplica{a, b} {
			if s := get(r, "BBBB-BBBH"); s != http.StatusTooManyRequests {
				t.Errorf("guess 6 on replica %d: %d, want 429 (the budget is shared)", i, s)
			}
		}
	})

	t.Run("KillOneReplica", func(t *testing.T) {
		// Mid-flow: the code was issued by a, a dies before the poll.
		d := c.post(t, a.url(), "/device_authorization", url.Values{"client_id": {"demo-app"}}, nil)
		if d.Status != 200 {
			t.Fatalf("device authorization: %d", d.Status)
		}
		a.kill()
		if _, stderr, err := run("approve", d.Str("user_code"), "--data", b.dir, "--as", "alice"); err != nil {
			t.Fatalf("approve on the survivor: %v %s", err, stderr)
		}
		// Clients go through the balancer, which still lists the dead
		// replica: they retry on 502 and complete on the other.
		if r := c.post(t, c.issuer, "/token", deviceGrant(d.Str("device_code")), key); r.Status != 200 {
			t.Fatalf("poll after a replica died: %d %s", r.Status, r.Raw)
		}
		// Restarted: nothing lost (the first login's refresh token
		// still rotates there), nothing revoked comes back (the reused
		// family stays refused).
		a.start()
		c.lb.set(a.addr, b.addr)
		r := c.post(t, a.url(), "/token", refreshGrant(rt), key)
		if r.Status != 200 {
			t.Fatalf("refresh after restart: %d %s", r.Status, r.Raw)
		}
		rt = r.Str("refresh_token")
		if got := c.post(t, a.url(), "/token", refreshGrant(tok.Str("refresh_token")), key); got.Status != 400 {
			t.Fatalf("an already-rotated refresh token after restart: %d %s, want 400", got.Status, got.Raw)
		}
		if reused == "" {
			t.Fatal("no revoked family from RefreshReuseRevokesFamily")
		}
		if got := c.post(t, a.url(), "/token", refreshGrant(reused), key); got.Status != 400 || got.Str("error") != "invalid_grant" {
			t.Fatalf("a family revoked before the crash, after restart: %d %s, want 400 invalid_grant", got.Status, got.Raw)
		}
	})

	t.Run("SharedAuthorizationLimit", func(t *testing.T) {
		// Last: it spends 127.0.0.1's allowance. Device authorizations
		// from one source, alternating replicas: one bucket (burst 30 at
		// 0.5/s), not one per replica (which would let about 60 through).
		ok := 0
		for i := range 80 {
			r := c.post(t, c2r(i, a, b).url(), "/device_authorization", url.Values{"client_id": {"demo-app"}}, nil)
			if r.Status == http.StatusTooManyRequests {
				continue
			}
			if r.Status != 200 {
				t.Fatalf("device authorization %d: %d %s", i, r.Status, r.Raw)
			}
			ok++
		}
		if ok > 36 {
			t.Fatalf("%d of 80 device authorizations from one source passed; the shared burst is 30", ok)
		}
	})
}
