package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/internal/oauthtest"
	"github.com/keyless-dev/keyless/sidecar/proxy"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// replicaSet is two proxy replicas and an issuer sharing one real
// redis-server, wired exactly as `keyless proxy --store` and `keyless serve
// --store` wire them (openShared, sharedProxyOptions, mirrored).
type replicaSet struct {
	redis    *redistest.Server
	replicas [2]*httptest.Server
	minter   *token.Minter
	revs     store.Revocations // the issuer's: durable list mirrored to Redis
	db       *boltstore.DB     // the issuer's durable log itself
	hits     atomic.Int64
}

const replicaPublicURL = "https://api.example.test"

func startReplicas(t *testing.T) *replicaSet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	rs := &replicaSet{redis: redistest.Start(t)}

	ks, err := token.NewKeySet(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := ks.JWKS()
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(issuer.Close)
	rs.minter = &token.Minter{Keys: ks, Issuer: issuer.URL}

	db, err := boltstore.Open(filepath.Join(t.TempDir(), boltstore.FileName), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	issStore, err := openShared(ctx, rs.redis.URL(), 0, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { issStore.Close() })
	rs.revs, rs.db = mirrored(ctx, db, issStore, log), db

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.hits.Add(1)
		fmt.Fprintf(w, `{"sub":%q}`, r.Header.Get("X-Keyless-Sub"))
	}))
	t.Cleanup(upstream.Close)
	cfg, err := proxy.ParseConfig([]byte(fmt.Sprintf(`
public_url: %s
token: {issuer: %s, jwks_url: %s/jwks.json}
upstreams: {api: {url: %s}}
routes:
  - {name: things, methods: [GET], path: /v1/**, upstream: api, scopes: [api:read],
     rate_limit: {per_subject: {rate: 0.01, burst: 4}}}
`, replicaPublicURL, issuer.URL, issuer.URL, upstream.URL)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range rs.replicas {
		st, err := openShared(ctx, rs.redis.URL(), 0, 0, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		p, err := proxy.New(cfg, sharedProxyOptions(proxy.Options{Logger: log}, st))
		if err != nil {
			t.Fatal(err)
		}
		rs.replicas[i] = httptest.NewServer(p)
		t.Cleanup(rs.replicas[i].Close)
	}
	// The proxies answer 503 until the issuer has seeded the shared
	// revocations from its durable list (its first start declares the
	// brand-new Redis fresh: no restart guard), then serve by themselves.
	seed := newKey(t)
	rs.waitStatus(t, 0, seed, rs.lease(t, seed, "seed"), "/v1/seed", 200, 15*time.Second)
	return rs
}

var newKey = oauthtest.NewKey

type testLease struct {
	raw    string
	claims *token.Claims
}

func (rs *replicaSet) lease(t *testing.T, key dpop.Signer, sub string) testLease {
	t.Helper()
	id, _ := token.RandomID()
	raw, c, err := rs.minter.Issue(context.Background(), token.Spec{
		Subject: sub, Audience: []string{replicaPublicURL}, ClientID: "app", Scope: []string{"api:read"},
		JKT: key.PublicJWK().Thumbprint(), TTL: 5 * time.Minute, LeaseID: id,
	})
	if err != nil {
		t.Fatal(err)
	}
	return testLease{raw: raw, claims: c}
}

// send sends GET path to replica i with the lease and proof; proof "" makes
// a fresh one.
func (rs *replicaSet) send(t *testing.T, i int, key dpop.Signer, l testLease, path, proof string) (*http.Response, string) {
	t.Helper()
	if proof == "" {
		var err error
		if proof, err = dpop.NewProof(key, "GET", replicaPublicURL+path, dpop.ProofOptions{AccessToken: l.raw}); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest("GET", rs.replicas[i].URL+path, nil)
	req.Host = strings.TrimPrefix(replicaPublicURL, "https://") // the proxy serves its public host only
	req.Header.Set("Authorization", "DPoP "+l.raw)
	req.Header.Set("DPoP", proof)
	resp, err := rs.replicas[i].Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// waitStatus polls replica i with fresh proofs until it answers want
// within d; the loop is bounded.
func (rs *replicaSet) waitStatus(t *testing.T, i int, key dpop.Signer, l testLease, path string, want int, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last int
	var body string
	for time.Since(start) < d {
		resp, b := rs.send(t, i, key, l, path, "")
		if last, body = resp.StatusCode, b; last == want {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("replica %d: status %d (%s), want %d within %v", i, last, body, want, d)
	return 0
}

func TestReplicasShareRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	rs := startReplicas(t)
	key := newKey(t)
	l := rs.lease(t, key, "alice")

	t.Run("a proof accepted by one replica is a replay at the other", func(t *testing.T) {
		proof, _ := dpop.NewProof(key, "GET", replicaPublicURL+"/v1/orders", dpop.ProofOptions{AccessToken: l.raw})
		before := rs.hits.Load()
		if resp, body := rs.send(t, 0, key, l, "/v1/orders", proof); resp.StatusCode != 200 {
			t.Fatalf("replica A: %d %s", resp.StatusCode, body)
		}
		resp, _ := rs.send(t, 1, key, l, "/v1/orders", proof)
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_dpop_proof"`) {
			t.Errorf("replica B: %d %q, want 401 invalid_dpop_proof", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if got := rs.hits.Load() - before; got != 1 {
			t.Errorf("upstream hits = %d, want 1", got)
		}
	})

	t.Run("rate limits are shared", func(t *testing.T) {
		bob := newKey(t)
		lb := rs.lease(t, bob, "bob")
		var statuses []int
		for i := 0; i < 6; i++ {
			resp, _ := rs.send(t, i%2, bob, lb, "/v1/rl", "")
			statuses = append(statuses, resp.StatusCode)
		}
		if fmt.Sprint(statuses) != "[200 200 200 200 429 429]" {
			t.Errorf("statuses across replicas = %v, want a burst of 4 shared", statuses)
		}
	})

	t.Run("a revocation at the issuer reaches both replicas within a second", func(t *testing.T) {
		carol := newKey(t)
		lc := rs.lease(t, carol, "carol")
		for i := range rs.replicas {
			if resp, body := rs.send(t, i, carol, lc, "/v1/x", ""); resp.StatusCode != 200 {
				t.Fatalf("replica %d before revocation: %d %s", i, resp.StatusCode, body)
			}
		}
		if err := rs.revs.Revoke(context.Background(), store.Revocation{Kind: store.KindLease, Value: lc.claims.LeaseID}, lc.claims.Expiry); err != nil {
			t.Fatal(err)
		}
		for i := range rs.replicas {
			took := rs.waitStatus(t, i, carol, lc, "/v1/x", 401, time.Second)
			t.Logf("replica %d refused the revoked lease after %v", i, took)
		}
	})

	t.Run("redis stalled while revoking: acknowledged once durable, refused at both replicas within a second of resuming", func(t *testing.T) {
		gail, hank := newKey(t), newKey(t)
		lg, lh := rs.lease(t, gail, "gail"), rs.lease(t, hank, "hank")
		for i := range rs.replicas {
			if resp, body := rs.send(t, i, gail, lg, "/v1/stall", ""); resp.StatusCode != 200 {
				t.Fatalf("replica %d before the stall: %d %s", i, resp.StatusCode, body)
			}
		}
		rs.redis.Pause() // SIGSTOP: connections stay open, nothing answers
		resumed := false
		defer func() {
			if !resumed {
				rs.redis.Resume()
			}
		}()
		if err := rs.revs.Revoke(context.Background(), store.Revocation{Kind: store.KindLease, Value: lg.claims.LeaseID}, lg.claims.Expiry); err != nil {
			t.Fatalf("revocation while redis is stalled: %v (it is durable: it must be acknowledged)", err)
		}
		// A revocation whose write to Redis was lost in transit (the
		// issuer crashed after the durable write, a partition): only the
		// converger's comparison by sequence number can bring it.
		if err := rs.db.Revoke(context.Background(), store.Revocation{Kind: store.KindLease, Value: lh.claims.LeaseID}, lh.claims.Expiry); err != nil {
			t.Fatal(err)
		}
		before := rs.hits.Load()
		for i := range rs.replicas {
			if resp, _ := rs.send(t, i, gail, lg, "/v1/stall", ""); resp.StatusCode != 503 {
				t.Errorf("replica %d while redis is stalled: %d, want 503", i, resp.StatusCode)
			}
		}
		if rs.hits.Load() != before {
			t.Error("a request was forwarded while redis was stalled")
		}
		// Stalled longer than every client timeout, so the write the
		// revocation tried has failed: only the converger can bring it.
		time.Sleep(1500 * time.Millisecond)
		rs.redis.Resume()
		resumed = true
		for i := range rs.replicas {
			took := rs.waitStatus(t, i, gail, lg, "/v1/stall", 401, time.Second)
			t.Logf("replica %d refused the lease revoked during the stall %v after redis resumed", i, took)
			took = rs.waitStatus(t, i, hank, lh, "/v1/stall", 401, time.Second)
			t.Logf("replica %d refused the lease whose Redis write was lost %v after redis resumed", i, took)
		}
		// Between Redis resuming and the converger's push (milliseconds)
		// a replica may still answer from Redis without the entry; once
		// refused, a lease is refused for good.
		before = rs.hits.Load()
		for i := range rs.replicas {
			for _, l := range []struct {
				k dpop.Signer
				l testLease
			}{{gail, lg}, {hank, lh}} {
				if resp, _ := rs.send(t, i, l.k, l.l, "/v1/stall", ""); resp.StatusCode != 401 {
					t.Errorf("replica %d after convergence: %d, want 401", i, resp.StatusCode)
				}
			}
		}
		if rs.hits.Load() != before {
			t.Error("a request with a revoked lease was forwarded after convergence")
		}
	})

	t.Run("redis down: 503 and never a pass; back empty: nothing revoked returns", func(t *testing.T) {
		dave := newKey(t)
		ld := rs.lease(t, dave, "dave")
		revoked := newKey(t)
		lr := rs.lease(t, revoked, "erin")
		if err := rs.revs.Revoke(context.Background(), store.Revocation{Kind: store.KindSub, Value: "erin"}, store.WatermarkUntil(lr.claims.IssuedAt)); err != nil {
			t.Fatal(err)
		}
		rs.redis.Kill()
		before := rs.hits.Load()
		for i := 0; i < 10; i++ {
			resp, body := rs.send(t, i%2, dave, ld, "/v1/down", "")
			if resp.StatusCode != 503 || !strings.Contains(body, "unavailable") {
				t.Fatalf("request %d with redis down: %d %s, want 503", i, resp.StatusCode, body)
			}
		}
		if rs.hits.Load() != before {
			t.Fatal("a request was forwarded while redis was down")
		}
		rs.redis.Restart() // empty: no persistence
		// Service resumes by itself once the issuer has re-seeded and the
		// replay guard (proofs older than the restart) has passed.
		for i := range rs.replicas {
			rs.waitStatus(t, i, dave, ld, "/v1/up", 200, 15*time.Second)
			if resp, _ := rs.send(t, i, revoked, lr, "/v1/up", ""); resp.StatusCode != 401 {
				t.Errorf("replica %d: revoked subject after an empty restart: %d, want 401", i, resp.StatusCode)
			}
		}
	})
}

// TestOpenSharedRefusesEviction: a Redis that may evict live replay entries
// is refused at start (it would reopen replay windows under memory
// pressure); a fresh, unseeded Redis with noeviction is accepted.
func TestOpenSharedRefusesEviction(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	rs := redistest.Start(t)
	st, err := openShared(ctx, rs.URL(), 0, 0, log)
	if err != nil {
		t.Fatalf("noeviction Redis refused: %v", err)
	}
	if err := st.Client().ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if st, err := openShared(ctx, rs.URL(), 0, 0, log); err == nil {
		st.Close()
		t.Fatal("a Redis that evicts keys was accepted")
	} else if !strings.Contains(err.Error(), "noeviction") {
		t.Errorf("err = %v, want it to say to set noeviction", err)
	}
}
