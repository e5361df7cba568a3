package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// /readyz is red while the issuer's key set cannot be fetched (every lease
// would get 503), and says why; it turns green once keys arrive, without
// fetching more than once per refresh interval meanwhile.
func TestReadyzFollowsTheKeys(t *testing.T) {
	keys, err := token.NewKeySet(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var serve atomic.Bool
	var hits atomic.Int32
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !serve.Load() {
			http.NotFound(w, r)
			return
		}
		b, err := keys.JWKS()
		if err != nil {
			t.Error(err)
		}
		w.Write(b)
	}))
	defer jwks.Close()
	now := time.Unix(1_800_000_000, 0)
	cfg := testConfig("http://127.0.0.1:1")
	cfg.Token.Issuer = "https://auth.example.test"
	cfg.Token.JWKSURL = jwks.URL + "/.well-known/jwks.json"
	p, err := New(cfg, Options{Revocations: &memstore.Revocations{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	admin := httptest.NewServer(p.AdminHandler())
	defer admin.Close()
	readyz := func() (int, string) {
		res, err := http.Get(admin.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, body := readyz()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "token.jwks_url") || !strings.Contains(body, "status 404") {
		t.Errorf("readyz with a 404 JWKS = %d %q, want 503 naming token.jwks_url and the 404", code, body)
	}
	if err := p.KeysReady(context.Background()); err == nil {
		t.Error("KeysReady = nil with a 404 JWKS")
	}
	serve.Store(true)
	if code, _ := readyz(); code != http.StatusServiceUnavailable || hits.Load() != 1 {
		t.Errorf("inside the refresh interval: readyz %d after %d fetches, want 503 after 1", code, hits.Load())
	}
	now = now.Add(token.DefaultRefreshInterval)
	if code, body := readyz(); code != http.StatusOK || body != "ready\n" {
		t.Errorf("readyz with keys = %d %q, want 200", code, body)
	}
}
