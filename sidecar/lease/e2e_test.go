package lease

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/proxy"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// TestEndToEndProxy vends leases and spends them at the real proxy, with
// an upstream that counts hits: a lease is forwarded; a preview lease gets
// the configured example body and the upstream is not contacted; a
// revoked lease fails at once; a device-flow token is refused
// (docs/security.md#d14).
func TestEndToEndProxy(t *testing.T) {
	h := newHarness(t)
	var hits atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{"orders":["live"]}`)
	}))
	defer upstream.Close()
	p, err := proxy.New(proxy.Config{
		PublicURL: apiAud,
		Upstreams: map[string]proxy.Upstream{"echo": {URL: upstream.URL}},
		Routes: []proxy.Route{{Name: "orders", Methods: []string{"GET"}, Path: "/v1/orders", Upstream: "echo",
			Scopes: []string{"orders:read"}, Preview: &proxy.Preview{Body: `{"orders":["example"]}`}}},
	}, proxy.Options{
		Tokens:      &token.JWTVerifier{Keys: h.as.Keys(), Issuer: h.as.Issuer(), Audience: apiAud, Now: h.clk.Now},
		Replay:      &memstore.Replay{Now: h.clk.Now},
		Revocations: h.db,
		Now:         h.clk.Now,
		Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(p)
	defer ps.Close()
	call := func(tok string, k dpop.Signer) (int, string) {
		t.Helper()
		proof, err := dpop.NewProof(k, http.MethodGet, apiAud+"/v1/orders", dpop.ProofOptions{Now: h.clk.Now(), AccessToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, ps.URL+"/v1/orders", nil)
		req.Host = strings.TrimPrefix(apiAud, "https://") // the proxy serves its public host only
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Set("DPoP", proof)
		resp, err := ps.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b) + " " + resp.Header.Get("WWW-Authenticate")
	}

	live, k := h.leaseFor("alice", "demo-app")
	if code, body := call(live.Str("access_token"), k); code != 200 || !strings.Contains(body, "live") || hits.Load() != 1 {
		t.Fatalf("live lease: %d %s, hits %d", code, body, hits.Load())
	}

	pk := newKey(t)
	pv := h.lease(pk, map[string]any{"subject_token": h.login("zed", "preview-app", readOnly, pk), "client_id": "preview-app"})
	if pv.Status != 200 {
		t.Fatalf("preview lease: %d %s", pv.Status, pv.Raw)
	}
	if code, body := call(pv.Str("access_token"), pk); code != 200 || !strings.Contains(body, "example") || hits.Load() != 1 {
		t.Fatalf("preview lease: %d %s, upstream hits %d (want 1: not forwarded)", code, body, hits.Load())
	}

	login := h.login("alice", "demo-app", readOnly, k)
	if code, body := call(login, k); code != 401 || !strings.Contains(body, "invalid_token") || hits.Load() != 1 {
		t.Fatalf("device-flow token at the proxy: %d %s", code, body)
	}

	r := h.postForm(PathRevoke, url.Values{"token": {live.Str("access_token")}, "client_id": {"demo-app"}}, k)
	if r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Raw)
	}
	if code, body := call(live.Str("access_token"), k); code != 401 || hits.Load() != 1 {
		t.Fatalf("revoked lease: %d %s, hits %d", code, body, hits.Load())
	}
}
