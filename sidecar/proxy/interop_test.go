package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/internal/nodetest"
	"github.com/keyless-dev/keyless/sidecar/proxy"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// TestInteropThirdPartyClients runs real npm clients against two proxies
// (one in nonce mode) that verify real leases through the issuer's JWKS.
func TestInteropThirdPartyClients(t *testing.T) {
	nodetest.Require(t, "dpop", "oauth4webapi", "jose")
	ks, err := token.NewKeySet(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := ks.JWKS()
		w.Write(b)
	}))
	defer issuer.Close()
	minter := &token.Minter{Keys: ks, Issuer: issuer.URL}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"sub":%q,"saw_dpop":%t}`, r.Header.Get("X-Keyless-Sub"), r.Header.Get("DPoP") != "")
	}))
	defer upstream.Close()

	start := func(nonce bool) *httptest.Server {
		srv := httptest.NewUnstartedServer(nil)
		cfg, err := proxy.ParseConfig([]byte(fmt.Sprintf(`
public_url: http://%s
token: {issuer: %s, jwks_url: %s/jwks.json}
upstreams: {api: {url: %s}}
routes: [{name: orders, methods: [GET], path: /v1/orders, upstream: api, scopes: [orders:read]}]
dpop: {algs: [ES256, Ed25519, EdDSA, PS256, RS256], nonce: {enabled: %t}}
`, srv.Listener.Addr(), issuer.URL, issuer.URL, upstream.URL, nonce)))
		if err != nil {
			t.Fatal(err)
		}
		p, err := proxy.New(cfg, proxy.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		srv.Config.Handler = p
		srv.Start()
		return srv
	}
	plain, nonced := start(false), start(true)
	defer plain.Close()
	defer nonced.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "interop.mjs"), plain.URL, nonced.URL)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	results := map[string]map[string]any{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("node said %q", sc.Text())
		}
		if name, ok := m["need"].(string); ok {
			id, _ := token.RandomID()
			raw, _, err := minter.Issue(ctx, token.Spec{Subject: "user-" + name, Audience: []string{"http://" + plain.Listener.Addr().String(), "http://" + nonced.Listener.Addr().String()},
				ClientID: "app", Scope: []string{"orders:read"}, JKT: m["jkt"].(string), LeaseID: id})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(map[string]string{"name": name, "lease": raw})
			stdin.Write(append(b, '\n'))
			continue
		}
		results[m["result"].(string)] = m
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	for _, name := range []string{"ES256", "Ed25519", "PS256", "RS256", "oauth4webapi"} {
		r := results[name]
		if r == nil {
			t.Errorf("%s: no result", name)
			continue
		}
		if r["status"] != float64(200) || r["sub"] != "user-"+name {
			t.Errorf("%s: %v, want 200 with sub user-%s", name, r, name)
		}
	}
	if r := results["oauth4webapi"]; r != nil && (r["attempts"] != float64(2) || r["again"] != float64(200)) {
		t.Errorf("oauth4webapi: %v, want one use_dpop_nonce retry, then the cached nonce accepted", r)
	}
}

// limitedBuffer keeps the first 64 KiB of a child's stderr.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
