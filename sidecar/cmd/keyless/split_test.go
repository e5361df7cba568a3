package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/lease"
	"github.com/keyless-dev/keyless/sidecar/proxy"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// split is `keyless serve` and `keyless proxy` as separate servers with no
// Redis: the proxy follows the issuer's revocation feed, wired as
// runServe (startIssuer) and runProxy (followFeed) wire them.
type split struct {
	t        *testing.T
	dir      string
	cfg      *config.Config
	addr     string // the issuer's listen address, kept across restarts
	proxyURL string
	iss      *runningIssuer
	proxy    *httptest.Server
	admin    http.Handler
}

func (s *split) startIssuer() {
	s.t.Helper()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.iss, err = startIssuer(context.Background(), issuerSetup{cfg: s.cfg, dataDir: s.dir, addr: s.addr, audit: log, audience: s.proxyURL, sandbox: true})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the port is being released
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.addr = s.iss.listen
}

func (s *split) stopIssuer() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.iss.shutdown(ctx)
}

func startSplit(t *testing.T, maxStale time.Duration) *split {
	t.Helper()
	cfg, err := config.Sandbox("pw")
	if err != nil {
		t.Fatal(err)
	}
	s := &split{t: t, dir: filepath.Join(t.TempDir(), "data"), cfg: cfg, addr: "127.0.0.1:0"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.proxyURL = "http://" + ln.Addr().String()
	s.startIssuer()
	t.Cleanup(func() { s.stopIssuer() })

	echo, _ := startEcho()
	t.Cleanup(echo.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	// The secret file an operator copies from the issuer's data dir.
	secret := filepath.Join(t.TempDir(), "feed.secret")
	b, _ := os.ReadFile(filepath.Join(s.dir, feedSecretFile))
	if err := os.WriteFile(secret, b, 0o600); err != nil {
		t.Fatal(err)
	}
	follower, err := followFeed(ctx, s.iss.url, "", secret, maxStale, log)
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(proxy.Config{
		PublicURL: s.proxyURL,
		Token:     proxy.TokenConfig{Issuer: s.iss.url, JWKSURL: s.iss.url + "/jwks.json"},
		Upstreams: map[string]proxy.Upstream{"echo": {URL: echo.URL}},
		Routes:    []proxy.Route{{Name: "read", Methods: []string{http.MethodGet}, Path: "/**", Upstream: "echo", Scopes: []string{"api:read"}}},
	}, proxy.Options{Revocations: follower, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s.proxy = httptest.NewUnstartedServer(p)
	s.proxy.Listener.Close()
	s.proxy.Listener = ln
	s.proxy.Start()
	t.Cleanup(s.proxy.Close)
	s.admin = p.AdminHandler()
	return s
}

// vend gets a lease for sub as the browser does after sign-in: a login
// token bound to key, exchanged at POST /v1/lease with a proof.
func (s *split) vend(key dpop.Signer, sub string) string {
	s.t.Helper()
	return vendAt(s.t, s.iss, key, sub)
}

// vendAt gets a lease from a running issuer for sub, bound to key.
func vendAt(t testing.TB, iss *runningIssuer, key dpop.Signer, sub string) string {
	t.Helper()
	login := loginToken(t, iss, key, sub)
	proof, err := dpop.NewProof(key, http.MethodPost, iss.url+lease.PathLease, dpop.ProofOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"subject_token": login, "client_id": "demo-app"})
	req, _ := http.NewRequest(http.MethodPost, iss.url+lease.PathLease, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("DPoP", proof)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := decodeJSON(resp.Body, &m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("lease: %d %v %v", resp.StatusCode, m, err)
	}
	return m["access_token"].(string)
}

// loginToken is a login access token of the issuer for sub, bound to key,
// as the device flow ends with.
func loginToken(t testing.TB, iss *runningIssuer, key dpop.Signer, sub string) string {
	t.Helper()
	login, _, err := iss.server.Minter().Issue(context.Background(), token.Spec{
		Subject: sub, Audience: []string{iss.url}, ClientID: "demo-app", Scope: []string{"api:read"},
		JKT: key.PublicJWK().Thumbprint(), TTL: 5 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return login
}

// get sends GET /x to the proxy with the lease and a fresh proof.
func (s *split) get(key dpop.Signer, lease string) int {
	s.t.Helper()
	proof, err := dpop.NewProof(key, http.MethodGet, s.proxyURL+"/x", dpop.ProofOptions{AccessToken: lease})
	if err != nil {
		s.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, s.proxyURL+"/x", nil)
	req.Header.Set("Authorization", "DPoP "+lease)
	req.Header.Set("DPoP", proof)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls until the proxy answers want, within d (bounded); any
// status in never fails at once.
func (s *split) waitFor(key dpop.Signer, lease string, want int, d time.Duration, never ...int) time.Duration {
	s.t.Helper()
	start := time.Now()
	last := 0
	for time.Since(start) < d {
		if last = s.get(key, lease); last == want {
			return time.Since(start)
		}
		for _, n := range never {
			if last == n {
				s.t.Fatalf("proxy answered %d, which must never happen here", last)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("proxy: %d, want %d within %v", last, want, d)
	return 0
}

func (s *split) readyz() (int, string) {
	rec := httptest.NewRecorder()
	s.admin.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code, rec.Body.String()
}

// TestSplitWithoutRedis: keyless serve + keyless proxy, no Redis. A
// revocation reaches the proxy within a second through the feed; an
// issuer stopped longer than the bound makes the proxy answer 503 (never a
// pass, /readyz says why); when it returns the proxy recovers and nothing
// revoked during the outage is accepted.
func TestSplitWithoutRedis(t *testing.T) {
	const bound = 1500 * time.Millisecond
	s := startSplit(t, bound)
	alice, bob, carol := newKey(t), newKey(t), newKey(t)
	la := s.vend(alice, "alice")
	s.waitFor(alice, la, 200, 5*time.Second) // the follower's first answer
	if code, body := s.readyz(); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}

	if out, _, err := run("revoke", "--sub", "alice", "--data", s.dir); err != nil || !strings.Contains(out, "1 active lease ended") {
		t.Fatalf("keyless revoke --sub alice: %v %q", err, out)
	}
	took := s.waitFor(alice, la, 401, time.Second)
	t.Logf("the proxy refused alice's lease %v after keyless revoke returned", took)

	lb := s.vend(bob, "bob")
	if code := s.get(bob, lb); code != 200 {
		t.Fatalf("bob before the outage: %d", code)
	}
	s.stopIssuer()
	took = s.waitFor(bob, lb, 503, bound+3*time.Second)
	t.Logf("issuer stopped: 503 after %v (bound %v)", took, bound)
	if code, body := s.readyz(); code != 503 || !strings.Contains(body, "revocation feed") {
		t.Errorf("readyz while cut off: %d %q", code, body)
	}
	// Revoked while the proxy is cut off (written to the issuer's durable
	// log while it is down; it is served when the issuer returns).
	db, err := boltstore.Open(filepath.Join(s.dir, boltstore.FileName), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := claimsOf(t, lb)
	if err := db.Revoke(context.Background(), store.Revocation{Kind: store.KindLease, Value: c.LeaseID}, c.Expiry); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s.startIssuer()
	s.waitFor(bob, lb, 401, bound+3*time.Second, 200)
	lc := s.vend(carol, "carol")
	s.waitFor(carol, lc, 200, 2*time.Second)
	if code, body := s.readyz(); code != 200 {
		t.Errorf("readyz after recovery: %d %s", code, body)
	}
}

// claimsOf reads a lease's claims without verifying (the test got it from
// the issuer).
func claimsOf(t *testing.T, raw string) *token.Claims {
	t.Helper()
	parts := strings.Split(raw, ".")
	var c struct {
		LeaseID string `json:"lease_id"`
		Exp     int64  `json:"exp"`
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if len(parts) != 3 || err != nil || json.Unmarshal(b, &c) != nil {
		t.Fatal("bad lease")
	}
	return &token.Claims{LeaseID: c.LeaseID, Expiry: time.Unix(c.Exp, 0)}
}
