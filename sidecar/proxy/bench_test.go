package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// BenchmarkServeHTTP is one allowed request through every check (lease
// through the token cache, a fresh ES256 proof, replay cache, revocation,
// scope, audit line) and the forward to a loopback upstream: the in-process
// counterpart of the bench harness (sidecar/proxy/bench), for allocations
// per request. Proofs are signed in batches with the timer stopped.
func BenchmarkServeHTTP(b *testing.B) { benchServe(b, NewAuditLogger(io.Discard)) }

// BenchmarkServeHTTPSlog is BenchmarkServeHTTP with the audit line written
// through a plain slog JSON handler.
func BenchmarkServeHTTPSlog(b *testing.B) {
	benchServe(b, slog.New(slog.NewJSONHandler(io.Discard, nil)))
}

func benchServe(b *testing.B, log *slog.Logger) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true,"items":[1,2,3]}`)
	}))
	defer upstream.Close()
	ctx := context.Background()
	keys, err := token.NewKeySet(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := dpop.NewECDSASigner(key)
	const pub = "http://bench.keyless.test"
	minter := &token.Minter{Keys: keys, Issuer: issuer}
	lease, _, err := minter.Issue(ctx, token.Spec{
		Subject: "bench", Audience: []string{pub}, ClientID: "bench", Scope: []string{"bench:read"},
		JKT: signer.PublicJWK().Thumbprint(), LeaseID: "lease-bench", TTL: time.Hour,
	})
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{
		PublicURL: pub,
		Upstreams: map[string]Upstream{"up": {URL: upstream.URL}},
		Routes:    []Route{{Name: "bench", Path: "/bench", Upstream: "up", Scopes: []string{"bench:read"}}},
	}
	cfg.DPoP.ReplayPerKey = -1
	p, err := New(cfg, Options{
		Tokens: &token.JWTVerifier{Keys: keys, Issuer: issuer, Audience: pub},
		Replay: &memstore.Replay{},
		Logger: log,
	})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 512
	proofs := make([]string, 0, batch)
	sign := func() {
		proofs = proofs[:0]
		for range batch {
			pr, err := dpop.NewProof(signer, "GET", pub+"/bench", dpop.ProofOptions{AccessToken: lease})
			if err != nil {
				b.Fatal(err)
			}
			proofs = append(proofs, pr)
		}
	}
	req := func(proof string) *http.Request {
		r := httptest.NewRequest("GET", pub+"/bench", nil)
		r.RequestURI = "/bench"
		r.Header.Set("Authorization", "DPoP "+lease)
		r.Header.Set("DPoP", proof)
		return r
	}
	// Warm the token cache and the upstream connection.
	sign()
	w := httptest.NewRecorder()
	p.ServeHTTP(w, req(proofs[0]))
	if w.Code != http.StatusOK {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
	next := len(proofs)
	reqs := make([]*http.Request, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if next == len(proofs) {
			b.StopTimer()
			sign()
			for j, pr := range proofs {
				reqs[j] = req(pr)
			}
			next = 0
			b.StartTimer()
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, reqs[next])
		next++
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
