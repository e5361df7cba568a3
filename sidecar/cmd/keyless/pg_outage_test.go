package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/internal/oauthtest"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/pgstore"
	"github.com/keyless-dev/keyless/sidecar/store/pgstore/pgtest"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
)

// envOutage sets how long TestServePostgresOutage keeps the database down
// (a Go duration; default 2s, enough to see every endpoint answer 503 and
// the pool reconnect; set 10s to reproduce a longer outage).
const envOutage = "KEYLESS_TEST_PG_OUTAGE"

// TestServePostgresOutage: with the database stopped under load, the
// issuer answers 503 temporarily_unavailable with Retry-After (never a
// token, never a 500), /readyz is red; once it is back the same process
// serves again without a restart, and every refresh token it handed out
// has its record (each chain's latest token still rotates).
func TestServePostgresOutage(t *testing.T) {
	outage := 2 * time.Second
	if v := os.Getenv(envOutage); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("$%s: %v", envOutage, err)
		}
		outage = d
	}
	pg := pgtest.Start(t) // its own server: this test stops it
	db := pg.NewDB(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keyless.yaml")
	c := &pgCluster{issuer: "http://" + addr}
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(serveConfig, c.issuer)), 0o600); err != nil {
		t.Fatal(err)
	}
	iss := startServe(t, "--config", cfgPath, "--data", dir, "--db", db, "--issuer-addr", addr, "--assets", "")
	key := newKey(t)
	ready := func() int {
		resp, err := http.Get(iss.adminURL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := ready(); s != 200 {
		t.Fatalf("/readyz = %d before the outage", s)
	}

	// Bounded load: two refresh chains and device authorizations, until
	// told to stop (or 5000 requests each).
	const workers = 2
	latest := make([]string, workers)
	for i := range latest {
		code := c.startFlow(t, c.issuer, dir)
		r := c.post(t, c.issuer, "/token", deviceGrant(code), key)
		if r.Status != 200 {
			t.Fatalf("token: %d %s", r.Status, r.Raw)
		}
		latest[i] = r.Str("refresh_token")
	}
	var mu sync.Mutex
	counts := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 5000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var r oauthtest.Response
				if n%2 == 0 {
					r = c.post(t, c.issuer, "/token", refreshGrant(latest[i]), key)
					if r.Status == 200 {
						latest[i] = r.Str("refresh_token")
					}
				} else {
					r = c.post(t, c.issuer, "/device_authorization", url.Values{"client_id": {"demo-app"}}, nil)
				}
				k := strconv.Itoa(r.Status)
				if r.Status == http.StatusServiceUnavailable {
					if r.Str("error") != "temporarily_unavailable" || r.Header.Get("Retry-After") == "" {
						t.Errorf("503 without temporarily_unavailable and Retry-After: %v %s", r.Header, r.Raw)
					}
				}
				if r.Status == 200 && r.Str("error") != "" {
					t.Errorf("200 with an error: %s", r.Raw)
				}
				mu.Lock()
				counts[k]++
				mu.Unlock()
				time.Sleep(5 * time.Millisecond) // pace the load; not a synchronisation
			}
		}()
	}
	countOf := func(k string) int { mu.Lock(); defer mu.Unlock(); return counts[k] }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (answers so far: %v)", what, counts)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("load before the outage", func() bool { return countOf("200") >= 10 })

	pg.Stop()
	down := time.Now()
	waitFor("503s during the outage", func() bool { return countOf("503") >= 5 })
	if s := ready(); s != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d with the database down, want 503", s)
	}
	time.Sleep(time.Until(down.Add(outage))) // the outage itself: its length is the test's parameter
	okBefore := countOf("200")
	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor("recovery", func() bool { return countOf("200") > okBefore+10 })
	close(stop)
	wg.Wait()
	if s := ready(); s != 200 {
		t.Errorf("/readyz = %d after recovery", s)
	}
	for k := range counts {
		if k != "200" && k != "503" && k != "429" {
			t.Errorf("answers %v: only 200, 503 and 429 are expected", counts)
		}
	}
	// No token without its durable record: each chain's latest refresh
	// token, handed out with a 200, rotates now.
	for i, rt := range latest {
		if r := c.post(t, c.issuer, "/token", refreshGrant(rt), key); r.Status != 200 {
			t.Errorf("chain %d: latest refresh token after the outage: %d %s", i, r.Status, r.Raw)
		}
	}
	t.Logf("answers: %v", counts)
}

// TestServePostgresRevocationToRedis: a revocation another replica wrote
// to the database (and, say, failed to write to Redis) reaches the
// proxies' Redis through this replica's LISTEN within a second, not at
// its next periodic catch-up.
func TestServePostgresRevocationToRedis(t *testing.T) {
	rd := redistest.Start(t)
	db := pgtest.NewDB(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keyless.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(serveConfig, "http://"+addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	startServe(t, "--config", cfgPath, "--data", dir, "--db", db, "--store", rd.URL(), "--issuer-addr", addr, "--assets", "")
	ctx := context.Background()
	other, err := pgstore.Open(ctx, db, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	proxyView, err := redisstore.New(rd.URL(), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer proxyView.Close()
	r := store.Revocation{Kind: store.KindLease, Value: "lease-revoked-elsewhere"}
	start := time.Now()
	if err := other.Revoke(ctx, r, start.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for {
		if ok, err := proxyView.AnyRevoked(ctx, r); err == nil && ok {
			break
		}
		if time.Since(start) > followInterval/2 {
			t.Fatalf("the revocation did not reach Redis within %v (the periodic catch-up is every %v)", followInterval/2, followInterval)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("in Redis after %v", time.Since(start))
}
