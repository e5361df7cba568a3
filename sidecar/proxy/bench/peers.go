package main

// -peers: the keyless proxy beside the Go proxy people already put in
// front of services, oauth2-proxy (validating plain bearer JWTs, its
// cheapest authenticated path), and the pooled bare ReverseProxy, in one
// interleaved run. oauth2-proxy is an external program built from its own
// module (tools/oauth2-proxy, `make oauth2-proxy`), so its dependency
// graph never touches keyless's go.mod.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/keyless-dev/keyless/sidecar/dpop"
)

// peerIssuer is an OIDC issuer on loopback with one RS256 key: discovery
// (OpenID Connect Discovery 1.0, section 4,
// https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig)
// and its JWKS, all oauth2-proxy needs to verify bearer JWTs.
type peerIssuer struct {
	srv *httptest.Server
	key jwk.Key
}

func newPeerIssuer() (*peerIssuer, error) {
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, err
	}
	key.Set(jwk.KeyIDKey, "bench")
	key.Set(jwk.AlgorithmKey, jwa.RS256)
	pub, err := key.PublicKey()
	if err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	set.AddKey(pub)
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	is := &peerIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		u := is.srv.URL
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                u,
			"authorization_endpoint":                u + "/authorize",
			"token_endpoint":                        u + "/token",
			"userinfo_endpoint":                     u + "/userinfo",
			"jwks_uri":                              u + "/jwks",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	})
	is.srv = httptest.NewServer(mux)
	return is, nil
}

// token is a bearer JWT for audience, valid for an hour, with the email
// claims oauth2-proxy builds its session from.
func (is *peerIssuer) token(audience string) (string, error) {
	now := time.Now()
	t, err := jwt.NewBuilder().Issuer(is.srv.URL).Subject("bench").Audience([]string{audience}).
		IssuedAt(now).NotBefore(now.Add(-time.Minute)).Expiration(now.Add(time.Hour)).
		Claim("email", "bench@bench.keyless.test").Claim("email_verified", true).Build()
	if err != nil {
		return "", err
	}
	b, err := jwt.Sign(t, jwt.WithKey(jwa.RS256, is.key))
	return string(b), err
}

// freeAddr is a free loopback port, for a program that takes its listen
// address as a flag.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startOAuth2Proxy runs oauth2-proxy in front of upstreamURL, accepting
// bearer JWTs from is (--skip-jwt-bearer-tokens) with request and auth
// logging off, as keyless's audit log goes to io.Discard here. It returns
// once the proxy answers a bearer request with 200.
func startOAuth2Proxy(bin, upstreamURL string, is *peerIssuer, bearer string) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	cmd := exec.Command(bin,
		"--http-address="+addr,
		"--upstream="+upstreamURL,
		"--provider=oidc",
		"--oidc-issuer-url="+is.srv.URL,
		"--client-id=bench",
		"--client-secret=bench-secret",
		fmt.Sprintf("--cookie-secret=%x", secret), // 32 hex characters: a 32-byte AES key
		"--email-domain=*",
		"--skip-jwt-bearer-tokens",
		"--request-logging=false",
		"--auth-logging=false",
		"--standard-logging=false",
	)
	cmd.Stderr = os.Stderr
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: "oauth2-proxy", cmd: cmd, hello: hello{Addr: addr}}
	c := &http.Client{Timeout: time.Second}
	for range 100 {
		r, _ := http.NewRequest("GET", "http://"+addr+"/bench", nil)
		r.Header.Set("Authorization", "Bearer "+bearer)
		if res, err := c.Do(r); err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				// The run means nothing if oauth2-proxy lets any bearer
				// through: a token with a broken signature must be refused.
				if err := refuses(c, addr, bearer); err != nil {
					p.cmd.Process.Kill()
					p.cmd.Wait()
					return nil, err
				}
				return p, nil
			}
			err = fmt.Errorf("bench: oauth2-proxy answered %d: %.200s", res.StatusCode, b)
			if res.StatusCode != 502 {
				p.cmd.Process.Kill()
				p.cmd.Wait()
				return nil, err
			}
		}
		time.Sleep(100 * time.Millisecond) // waiting for a child to listen
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
	return nil, errors.New("bench: oauth2-proxy did not start on " + addr)
}

// refuses checks that the proxy at addr refuses bearer with one
// signature character changed.
func refuses(c *http.Client, addr, bearer string) error {
	b := []byte(bearer)
	i := len(b) - 10
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	r, _ := http.NewRequest("GET", "http://"+addr+"/bench", nil)
	r.Header.Set("Authorization", "Bearer "+string(b))
	res, err := c.Do(r)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode == 200 {
		return errors.New("bench: oauth2-proxy accepted a bearer JWT with a broken signature")
	}
	return nil
}

// peerPhase is one timed phase of one proxy: throughput and the CPU its
// process spent per request.
type peerPhase struct {
	result
	cpuPerReq time.Duration
}

func measure(ticks func() (int64, error), fn func() result) peerPhase {
	c0, _ := ticks()
	r := fn()
	c1, _ := ticks()
	m := peerPhase{result: r}
	if n := r.requests(); n > 0 {
		m.cpuPerReq = time.Duration(c1-c0) * clockTick / time.Duration(n)
	}
	return m
}

// runPeers runs the bare ReverseProxy, oauth2-proxy (bin), keyless and,
// when nginxBin exists, nginx as the non-Go floor, each rep in a rotated order so no proxy always runs first or after the
// same one, and prints per-phase rows and the medians of the ratios
// paired within a rep.
func runPeers(bin, nginxBin string, dur time.Duration, reps, workers int) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("-peers needs oauth2-proxy (make oauth2-proxy): %w", err)
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true,"items":[1,2,3]}`)
	}))
	defer upstream.Close()
	is, err := newPeerIssuer()
	if err != nil {
		return err
	}
	defer is.srv.Close()
	bearer, err := is.token("bench")
	if err != nil {
		return err
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := dpop.NewECDSASigner(key)
	jkt := signer.PublicJWK().Thumbprint()
	bare, err := startChild("bare", upstream.URL, jkt, "", "")
	if err != nil {
		return err
	}
	defer bare.stop()
	full, err := startChild("keyless", upstream.URL, jkt, "", "")
	if err != nil {
		return err
	}
	defer full.stop()
	o2p, err := startOAuth2Proxy(bin, upstream.URL, is, bearer)
	if err != nil {
		return err
	}
	defer func() { o2p.cmd.Process.Kill(); o2p.cmd.Wait() }()
	var ngx *proc
	if _, err := os.Stat(nginxBin); err == nil {
		var stop func()
		if ngx, stop, err = startNginx(nginxBin, upstream.Listener.Addr().String()); err != nil {
			return err
		}
		defer stop()
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, DisableCompression: true}}
	bareReq := func(int) (*http.Request, bool) {
		r, _ := http.NewRequest("GET", "http://"+bare.Addr+"/bench", nil)
		r.Host = publicHost
		return r, true
	}
	o2pReq := func(int) (*http.Request, bool) {
		r, _ := http.NewRequest("GET", "http://"+o2p.Addr+"/bench", nil)
		r.Header.Set("Authorization", "Bearer "+bearer)
		return r, true
	}
	// Proofs are signed before each keyless phase, as in the main bench.
	proofs := func(n int) []string {
		out := make([]string, n)
		done := make(chan struct{})
		per := (n + runtime.NumCPU() - 1) / runtime.NumCPU()
		k := 0
		for s := 0; s < n; s += per {
			k++
			go func(s int) {
				for i := s; i < min(s+per, n); i++ {
					out[i], _ = dpop.NewProof(signer, "GET", publicURL+"/bench", dpop.ProofOptions{AccessToken: full.Lease})
				}
				done <- struct{}{}
			}(s)
		}
		for range k {
			<-done
		}
		return out
	}
	keylessReq := func(ps []string) func(int) (*http.Request, bool) {
		return func(i int) (*http.Request, bool) {
			if i >= len(ps) {
				return nil, false
			}
			r, _ := http.NewRequest("GET", "http://"+full.Addr+"/bench", nil)
			r.Host = publicHost
			r.Header.Set("Authorization", "DPoP "+full.Lease)
			r.Header.Set("DPoP", ps[i])
			return r, true
		}
	}

	fmt.Printf("proxy peers benchmark: %d CPUs, %s, %d connections, %v per phase, %d interleaved reps (rotated order), loopback\n",
		runtime.NumCPU(), runtime.Version(), workers, dur, reps)
	fmt.Println("each proxy in its own process, CPU from /proc/<pid>/stat; oauth2-proxy verifies an RS256 bearer JWT, keyless an ES256 lease plus a fresh ES256 DPoP proof")
	// Warm-up: connections, token caches, JWKS fetch; the bare proxy's
	// rate sizes the proof batches.
	peak := closedLoop(client, bareReq, workers, dur/4).rps
	closedLoop(client, o2pReq, workers, dur/4)
	closedLoop(client, keylessReq(proofs(2000)), workers, dur/4)

	type peer struct {
		name  string
		ticks func() (int64, error)
		run   func() result
	}
	of := func(p *proc) func() (int64, error) {
		return func() (int64, error) { return cpuTicks(p.cmd.Process.Pid) }
	}
	var ps []string
	peers := []peer{
		{"bare ReverseProxy (pooled)", of(bare), func() result { return closedLoop(client, bareReq, workers, dur) }},
		{"oauth2-proxy v7.15.6 (bearer JWT)", of(o2p), func() result { return closedLoop(client, o2pReq, workers, dur) }},
		{"keyless (all checks)", of(full), func() result { return closedLoop(client, keylessReq(ps), workers, dur) }},
	}
	if ngx != nil {
		ngxReq := func(int) (*http.Request, bool) {
			r, _ := http.NewRequest("GET", "http://"+ngx.Addr+"/bench", nil)
			return r, true
		}
		closedLoop(client, ngxReq, workers, dur/4)
		peers = append(peers, peer{"nginx (no checks, the non-Go floor)", func() (int64, error) { return treeTicks(ngx.cmd.Process.Pid) },
			func() result { return closedLoop(client, ngxReq, workers, dur) }})
	}
	got := make([][]peerPhase, len(peers)) // got[peer][rep]
	fmt.Println()
	fmt.Printf("%-44s %9s %9s %9s %6s %9s\n", "phase", "req/s", "p50", "p99", "errors", "CPU/req")
	for rep := range reps {
		for j := range peers {
			i := (j + rep) % len(peers)
			if i == 2 {
				// Enough proofs for 1.5x the bare proxy's best rate:
				// keyless cannot go faster than the bare one.
				ps = proofs(int(peak*dur.Seconds()*1.5) + 1000)
			}
			m := measure(peers[i].ticks, peers[i].run)
			if i == 0 {
				peak = max(peak, m.rps)
			}
			got[i] = append(got[i], m)
			fmt.Printf("%-44s %9.0f %9s %9s %6d %7.0fµs\n", fmt.Sprintf("rep %d: %s", rep+1, peers[i].name), m.rps,
				m.p50.Round(time.Microsecond), m.p99.Round(time.Microsecond), m.errors, float64(m.cpuPerReq.Nanoseconds())/1e3)
		}
	}

	ratio := func(a, b []peerPhase) float64 {
		var rs []float64
		for i := range a {
			if b[i].rps > 0 {
				rs = append(rs, a[i].rps/b[i].rps)
			}
		}
		return median(rs)
	}
	cpu := func(ms []peerPhase) float64 {
		var v []float64
		for _, m := range ms {
			v = append(v, float64(m.cpuPerReq.Nanoseconds())/1e3)
		}
		return median(v)
	}
	fmt.Println()
	fmt.Println("medians over the reps (ratios paired within a rep):")
	fmt.Printf("throughput, oauth2-proxy / pooled bare:   %.2fx\n", ratio(got[1], got[0]))
	fmt.Printf("throughput, keyless / pooled bare:        %.2fx\n", ratio(got[2], got[0]))
	fmt.Printf("throughput, keyless / oauth2-proxy:       %.2fx\n", ratio(got[2], got[1]))
	fmt.Printf("CPU per request, bare / oauth2-proxy / keyless: %.0f / %.0f / %.0f µs\n", cpu(got[0]), cpu(got[1]), cpu(got[2]))
	if ngx != nil {
		fmt.Printf("nginx: %.2fx the pooled bare proxy's throughput, %.0f µs CPU per request (master and workers)\n", ratio(got[3], got[0]), cpu(got[3]))
	}
	for i := range peers {
		for _, m := range got[i] {
			if m.errors > 0 {
				return fmt.Errorf("bench: %s refused or failed %d requests: its numbers are not comparable", peers[i].name, m.errors)
			}
		}
	}
	return nil
}

// nginxConf is a reverse proxy with no checks, nginx's default event loop
// and upstream keep-alive: the non-Go floor.
const nginxConf = `daemon off;
master_process on;
worker_processes %d;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log error;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  upstream up { server %[3]s; keepalive 64; }
  server {
    listen %[4]s;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`

// startNginx runs bin (a master and one worker per CPU) in front of
// upstreamAddr, with its configuration and files in a temporary
// directory, and returns once it answers 200.
func startNginx(bin, upstreamAddr string) (*proc, func(), error) {
	dir, err := os.MkdirTemp("", "keyless-bench-nginx-")
	if err != nil {
		return nil, nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	conf := dir + "/nginx.conf"
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, runtime.NumCPU(), dir, upstreamAddr, addr), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	cmd := exec.Command(bin, "-p", dir, "-e", dir+"/error.log", "-c", conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	stop := func() { cmd.Process.Signal(os.Interrupt); cmd.Wait(); os.RemoveAll(dir) }
	c := &http.Client{Timeout: time.Second}
	for range 100 {
		if res, err := c.Get("http://" + addr + "/bench"); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				return &proc{name: "nginx", cmd: cmd, hello: hello{Addr: addr}}, stop, nil
			}
		}
		time.Sleep(100 * time.Millisecond) // waiting for a child to listen
	}
	stop()
	return nil, nil, errors.New("bench: nginx did not start on " + addr)
}

// treeTicks is the CPU time of pid and its direct children (nginx's
// workers), from /proc/<pid>/task/<pid>/children (proc(5)).
func treeTicks(pid int) (int64, error) {
	t, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, err
	}
	for _, f := range strings.Fields(string(b)) {
		c, err := strconv.Atoi(f)
		if err != nil {
			return 0, err
		}
		ct, err := cpuTicks(c)
		if err != nil {
			return 0, err
		}
		t += ct
	}
	return t, nil
}
