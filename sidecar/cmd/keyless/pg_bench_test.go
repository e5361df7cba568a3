package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/lease"
	"github.com/keyless-dev/keyless/sidecar/store/pgstore/pgtest"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// BenchmarkIssuerStore: the token endpoint (a refresh-token rotation) and
// the lease endpoint (RFC 8693 exchange for a lease) of one issuer on the
// embedded bbolt store and on PostgreSQL, side by side in one run, over
// loopback HTTP with DPoP proofs. Reports p50 and p99 per request.
//
// bbolt fsyncs every commit; the test PostgreSQL does not unless
// PGTEST_FSYNC=on, which a fair comparison sets:
//
//	PGTEST_FSYNC=on go test -run '^$' -bench IssuerStore -benchtime 300x ./sidecar/cmd/keyless/
func BenchmarkIssuerStore(b *testing.B) {
	for _, backend := range []string{"bbolt", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			dbURL := ""
			if backend == "postgres" {
				dbURL = pgtest.NewDB(b)
			}
			iss, dir := benchStoreIssuer(b, dbURL)
			key := newKey(b)
			b.Run("token", func(b *testing.B) { benchRefresh(b, iss, dir, key) })
			b.Run("lease", func(b *testing.B) { benchLease(b, iss, key) })
		})
	}
}

// benchStoreIssuer starts the issuer as `keyless dev` does (sandbox policy:
// the vending service runs), on bbolt or, with dbURL, on PostgreSQL.
func benchStoreIssuer(b *testing.B, dbURL string) (*runningIssuer, string) {
	b.Helper()
	dir := b.TempDir()
	cfg, err := config.Sandbox("bench-password")
	if err != nil {
		b.Fatal(err)
	}
	iss, err := startIssuer(context.Background(), issuerSetup{cfg: cfg, dataDir: dir, addr: "127.0.0.1:0",
		audit: slog.New(slog.NewJSONHandler(io.Discard, nil)), audience: "http://127.0.0.1:1", sandbox: true, dbURL: dbURL})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iss.shutdown(ctx)
	})
	return iss, dir
}

// latencies records each operation and reports p50 and p99.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	b.ReportMetric(float64(l[len(l)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(l[len(l)*99/100].Microseconds())/1000, "p99-ms")
}

func benchRefresh(b *testing.B, iss *runningIssuer, dir string, key dpop.Signer) {
	c := &pgCluster{issuer: iss.url}
	d := c.post(b, iss.url, "/device_authorization", url.Values{"client_id": {config.SandboxClientID}}, nil)
	if _, stderr, err := run("approve", d.Str("user_code"), "--data", dir, "--as", "alice"); err != nil {
		b.Fatalf("approve: %v %s", err, stderr)
	}
	form := deviceGrant(d.Str("device_code"))
	form.Set("client_id", config.SandboxClientID)
	r := c.post(b, iss.url, "/token", form, key)
	if r.Status != 200 {
		b.Fatalf("token: %d %s", r.Status, r.Raw)
	}
	rt := r.Str("refresh_token")
	lat := make(latencies, 0, b.N)
	b.ResetTimer()
	for range b.N {
		f := refreshGrant(rt)
		f.Set("client_id", config.SandboxClientID)
		start := time.Now()
		r := c.post(b, iss.url, "/token", f, key)
		lat = append(lat, time.Since(start))
		if r.Status != 200 {
			b.Fatalf("refresh: %d %s", r.Status, r.Raw)
		}
		rt = r.Str("refresh_token")
	}
	b.StopTimer()
	lat.report(b)
}

func benchLease(b *testing.B, iss *runningIssuer, key dpop.Signer) {
	login, _, err := iss.server.Minter().Issue(context.Background(), token.Spec{
		Subject: "alice", Audience: []string{iss.url}, ClientID: config.SandboxClientID, Scope: []string{"api:read"},
		JKT: key.PublicJWK().Thumbprint(), TTL: time.Hour,
	})
	if err != nil {
		b.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"subject_token": login, "client_id": config.SandboxClientID})
	lat := make(latencies, 0, b.N)
	b.ResetTimer()
	for range b.N {
		proof, err := dpop.NewProof(key, http.MethodPost, iss.url+lease.PathLease, dpop.ProofOptions{})
		if err != nil {
			b.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, iss.url+lease.PathLease, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("DPoP", proof)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		if resp.StatusCode != 200 {
			b.Fatalf("lease: %d %s", resp.StatusCode, msg)
		}
	}
	b.StopTimer()
	lat.report(b)
}
