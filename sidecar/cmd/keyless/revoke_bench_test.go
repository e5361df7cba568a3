package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/proxy"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// BenchmarkRevocationToRefusal measures, per enforcement point, the time
// from a revocation (the owner's RFC 7009 request at the issuer's /revoke,
// as Sign out sends it) to the first refusal of the lease with a fresh
// proof, at every proxy: same process (keyless dev), split without Redis
// (the revocation feed), two replicas on Redis. Reported as p50-ms and
// p99-ms over b.N revocations; run with -benchtime=200x.
//
//	go test -run '^$' -bench RevocationToRefusal -benchtime=200x ./sidecar/cmd/keyless/
func BenchmarkRevocationToRefusal(b *testing.B) {
	const public = "https://api.example.test"
	b.Run("same-process", func(b *testing.B) {
		iss := benchIssuer(b, public, nil)
		p, err := proxy.New(benchProxyConfig(public, iss), proxy.Options{
			Tokens: &token.JWTVerifier{Keys: iss.server.Keys(), Issuer: iss.url, Audience: public}, Revocations: iss.db, Logger: discard(),
		})
		if err != nil {
			b.Fatal(err)
		}
		benchRefusal(b, iss, public, []http.Handler{p})
	})
	b.Run("split-without-redis", func(b *testing.B) {
		iss := benchIssuer(b, public, nil)
		secret := filepath.Join(b.TempDir(), "feed.secret")
		s, _ := os.ReadFile(filepath.Join(iss.dataDir, feedSecretFile))
		os.WriteFile(secret, s, 0o600)
		ctx, cancel := context.WithCancel(context.Background())
		b.Cleanup(cancel)
		f, err := followFeed(ctx, iss.url, "", secret, 0, discard())
		if err != nil {
			b.Fatal(err)
		}
		p, err := proxy.New(benchProxyConfig(public, iss), proxy.Options{Revocations: f, Logger: discard()})
		if err != nil {
			b.Fatal(err)
		}
		benchRefusal(b, iss, public, []http.Handler{p})
	})
	b.Run("two-replicas-on-redis", func(b *testing.B) {
		rd := redistest.Start(b)
		ctx, cancel := context.WithCancel(context.Background())
		b.Cleanup(cancel)
		shared, err := openShared(ctx, rd.URL(), 0, 0, discard())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { shared.Close() })
		iss := benchIssuer(b, public, shared)
		var ps []http.Handler
		for range 2 {
			st, err := openShared(ctx, rd.URL(), 0, 0, discard())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			p, err := proxy.New(benchProxyConfig(public, iss), sharedProxyOptions(proxy.Options{Logger: discard()}, st))
			if err != nil {
				b.Fatal(err)
			}
			ps = append(ps, p)
		}
		benchRefusal(b, iss, public, ps)
	})
}

func discard() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// benchRunning is a started issuer and its data directory.
type benchRunning struct {
	*runningIssuer
	dataDir string
}

func benchIssuer(b *testing.B, public string, shared *redisstore.Store) benchRunning {
	b.Helper()
	cfg, err := config.Sandbox("pw")
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(b.TempDir(), "data")
	iss, err := startIssuer(context.Background(), issuerSetup{cfg: cfg, dataDir: dir, addr: "127.0.0.1:0", audit: discard(), audience: public, sandbox: true, shared: shared})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iss.shutdown(ctx)
	})
	if shared != nil {
		waitSeeded(b, shared)
	}
	return benchRunning{iss, dir}
}

func benchProxyConfig(public string, iss benchRunning) proxy.Config {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) }))
	return proxy.Config{
		PublicURL: public,
		Token:     proxy.TokenConfig{Issuer: iss.url, JWKSURL: iss.url + "/jwks.json"},
		Upstreams: map[string]proxy.Upstream{"echo": {URL: echo.URL}},
		Routes:    []proxy.Route{{Name: "read", Methods: []string{http.MethodGet}, Path: "/**", Upstream: "echo", Scopes: []string{"api:read"}}},
	}
}

// benchRefusal vends a lease per iteration (untimed), then times its
// revocation at the issuer until every proxy refuses it.
func benchRefusal(b *testing.B, iss benchRunning, public string, proxies []http.Handler) {
	b.Helper()
	status := func(p http.Handler, key dpop.Signer, lease string) int {
		proof, _ := dpop.NewProof(key, http.MethodGet, public+"/v1/x", dpop.ProofOptions{AccessToken: lease})
		r := httptest.NewRequest(http.MethodGet, public+"/v1/x", nil)
		r.Header.Set("Authorization", "DPoP "+lease)
		r.Header.Set("DPoP", proof)
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		return w.Code
	}
	var took []time.Duration
	for b.Loop() {
		b.StopTimer()
		key := newKey(b)
		lease := vendAt(b, iss.runningIssuer, key, "alice")
		deadline := time.Now().Add(20 * time.Second)
		for _, p := range proxies { // ready: seeded, first feed answer
			for status(p, key, lease) != 200 {
				if time.Now().After(deadline) {
					b.Fatal("a proxy never accepted the lease")
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		proof, _ := dpop.NewProof(key, http.MethodPost, iss.url+"/revoke", dpop.ProofOptions{})
		req, _ := http.NewRequest(http.MethodPost, iss.url+"/revoke", strings.NewReader(url.Values{"token": {lease}, "client_id": {"demo-app"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("DPoP", proof)
		b.StartTimer()
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("revoke: %v %v", resp, err)
		}
		resp.Body.Close()
		for _, p := range proxies {
			for status(p, key, lease) != 401 {
				if time.Since(start) > 5*time.Second {
					b.Fatal("a proxy still accepts the revoked lease after 5 s")
				}
			}
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
	b.ReportMetric(ms(took[len(took)*99/100]), "p99-ms")
}
