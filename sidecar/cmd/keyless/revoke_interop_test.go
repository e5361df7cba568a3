package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/internal/nodetest"
	"github.com/keyless-dev/keyless/sidecar/proxy"
	"github.com/keyless-dev/keyless/sidecar/store/redisstore/redistest"
)

// TestOAuth4WebAPIRevocation: npm oauth4webapi's revocationRequest of a
// lease and of a renewal token at the issuer's advertised revocation
// endpoint; the two proxy replicas sharing a real redis-server (wired as
// keyless serve --store and keyless proxy --store) refuse the leases
// within a second; another key's proof is refused with 400 and the lease
// keeps working.
func TestOAuth4WebAPIRevocation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and node")
	}
	nodetest.Require(t, "oauth4webapi", "jose", "dpop")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	rd := redistest.Start(t)
	shared, err := openShared(ctx, rd.URL(), 0, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.Close() })
	cfg, err := config.Sandbox("pw")
	if err != nil {
		t.Fatal(err)
	}
	const public = "https://api.example.test"
	iss, err := startIssuer(ctx, issuerSetup{cfg: cfg, dataDir: filepath.Join(t.TempDir(), "data"), addr: "127.0.0.1:0",
		audit: log, audience: public, sandbox: true, shared: shared})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		iss.shutdown(sctx)
	})
	// The issuer seeds the new Redis in the background; until then it
	// answers 503 (fail closed), as its /readyz says.
	waitSeeded(t, shared)
	echo, _ := startEcho()
	t.Cleanup(echo.Close)
	pcfg := proxy.Config{
		PublicURL: public,
		Token:     proxy.TokenConfig{Issuer: iss.url, JWKSURL: iss.url + "/jwks.json"},
		Upstreams: map[string]proxy.Upstream{"echo": {URL: echo.URL}},
		Routes:    []proxy.Route{{Name: "read", Methods: []string{http.MethodGet}, Path: "/**", Upstream: "echo", Scopes: []string{"api:read"}}},
	}
	var replicas []string
	for range 2 {
		st, err := openShared(ctx, rd.URL(), 0, 0, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		// The replica is reached at its loopback address, an alias of
		// the public host (hosts).
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c := pcfg
		c.Hosts = []string{ln.Addr().String()}
		p, err := proxy.New(c, sharedProxyOptions(proxy.Options{Logger: log}, st))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewUnstartedServer(p)
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		t.Cleanup(srv.Close)
		replicas = append(replicas, srv.URL)
	}
	// A new Redis: the replicas answer 503 until the issuer has seeded it
	// and proofs are newer than the store's start (redisstore's restart
	// guard).
	probe := newKey(t)
	lp := vendAt(t, iss, probe, "probe")
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; i < len(replicas); {
		proof, _ := dpop.NewProof(probe, http.MethodGet, public+"/v1/things", dpop.ProofOptions{AccessToken: lp})
		req, _ := http.NewRequest(http.MethodGet, replicas[i]+"/v1/things", nil)
		req.Header.Set("Authorization", "DPoP "+lp)
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %d not ready: %d", i, resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := dpop.NewECDSASigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := priv.Bytes()
	pub := k.PublicJWK()
	in, _ := json.Marshal(map[string]any{
		"issuer": iss.url, "public": public, "replicas": replicas,
		"subject_token": loginToken(t, iss, k, "alice"),
		"jwk":           map[string]string{"kty": "EC", "crv": "P-256", "x": pub.X, "y": pub.Y, "d": base64.RawURLEncoding.EncodeToString(d)},
	})
	out := nodetest.Run(t, filepath.Join(nodetest.Root(t), "sidecar", "cmd", "keyless", "testdata", "oauth4webapi_revoke.mjs"), in)
	t.Logf("oauth4webapi revocation -> refused at both replicas after (ms): %s", out)
}
