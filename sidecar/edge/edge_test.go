package edge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/audit"
	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/keyquota"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// fakeHost is the Worker runtime in Go: ECDSA through crypto/ecdsa, the
// key set from a KeySet, stores in memory.
type fakeHost struct {
	jwks    []byte
	replay  *memstore.Replay
	revoked *memstore.Revocations
	limiter ratelimit.Memory
	mu      sync.Mutex
	fetches int
	// quota counts live replay entries per key as the Worker's replay
	// object does; quotaMax is the bound the Handler last asked for.
	quota    *keyquota.Quota
	quotaMax int
}

func (f *fakeHost) Verify(alg string, key *dpop.JWK, input, sig []byte) error {
	if alg != "ES256" || key.Kty != "EC" || key.Crv != "P-256" || len(sig) != 64 {
		return errors.New("unsupported")
	}
	x, _ := base64.RawURLEncoding.DecodeString(key.X)
	y, _ := base64.RawURLEncoding.DecodeString(key.Y)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return err
	}
	sum := sha256sum(input)
	if !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return errors.New("bad signature")
	}
	return nil
}

func (f *fakeHost) FetchJWKS(context.Context, string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches++
	return f.jwks, nil
}

func (f *fakeHost) UseJTI(ctx context.Context, jkt, jti string, until time.Time, max int) error {
	f.mu.Lock()
	f.quotaMax = max
	if max > 0 && f.quota == nil {
		f.quota = keyquota.New(max, time.Minute, nil)
	}
	f.mu.Unlock()
	if retry, ok := f.quota.Check(jkt); !ok {
		return &QuotaError{Retry: retry}
	}
	if err := f.replay.Use(ctx, jkt, jti, until); err != nil {
		return err
	}
	f.quota.Add(jkt, until)
	return nil
}

func (f *fakeHost) AnyRevoked(ctx context.Context, rs ...store.Revocation) (bool, error) {
	return f.revoked.AnyRevoked(ctx, rs...)
}

func (f *fakeHost) Allow(ctx context.Context, key string, l ratelimit.Limit, now time.Time) (ratelimit.Result, error) {
	return f.limiter.Allow(ctx, key, l, now)
}

func (f *fakeHost) Revoke(ctx context.Context, r store.Revocation, until time.Time) error {
	return f.revoked.Revoke(ctx, r, until)
}

type world struct {
	h      *Handler
	host   *fakeHost
	minter *token.Minter
	signer dpop.Signer
	config string // KEYLESS_PROXY
}

func newWorld(t testing.TB, env map[string]string) *world {
	t.Helper()
	return newWorldWith(t, "", env)
}

// newWorldWith appends extra YAML to testdata/edge.yaml.
func newWorldWith(t testing.TB, extra string, env map[string]string) *world {
	t.Helper()
	tmpl, err := os.ReadFile("testdata/edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfgText := strings.NewReplacer("${ORIGIN}", "http://127.0.0.1:9/base/", "${JWKS}", "https://auth.example.test/jwks").Replace(string(tmpl)) + extra
	vars := map[string]string{EnvProxy: cfgText, "ECHO_API_KEY": "origin-secret", EnvRevokeToken: "push-token"}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	keys, err := token.NewKeySet(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := keys.JWKS()
	host := &fakeHost{jwks: jwks, replay: &memstore.Replay{}, revoked: &memstore.Revocations{}}
	h, err := New(cfg, host, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := dpop.NewECDSASigner(k)
	return &world{h: h, host: host, minter: &token.Minter{Keys: keys, Issuer: "https://auth.example.test"}, signer: s, config: cfgText}
}

func (w *world) request(t testing.TB, method, path string, scopes ...string) *Request {
	t.Helper()
	tok, _, err := w.minter.Issue(context.Background(), token.Spec{Subject: "alice", ClientID: "app1", Scope: scopes,
		Audience: []string{"https://api.example.test"}, JKT: w.signer.PublicJWK().Thumbprint(), LeaseID: "lease-1"})
	if err != nil {
		t.Fatal(err)
	}
	return w.withToken(t, method, path, tok)
}

func (w *world) withToken(t testing.TB, method, path, tok string) *Request {
	p, _, _ := strings.Cut(path, "?")
	proof, err := dpop.NewProof(w.signer, method, "https://api.example.test"+p, dpop.ProofOptions{AccessToken: tok})
	if err != nil {
		t.Fatal(err)
	}
	return &Request{Method: method, URL: "https://api.example.test" + path, ContentLength: -1,
		Header: map[string][]string{"authorization": {"DPoP " + tok}, "dpop": {proof}, "x-keyless-sub": {"mallory"}, "x_keyless_sub": {"mallory"}, "cookie": {"a=b"}, "accept": {"application/json"}, "host": {"api.example.test"}}}
}

func header(hs [][2]string, name string) []string {
	var v []string
	for _, kv := range hs {
		if strings.EqualFold(kv[0], name) {
			v = append(v, kv[1])
		}
	}
	return v
}

func TestServeForwards(t *testing.T) {
	w := newWorld(t, nil)
	r := w.request(t, "GET", "/api/v1/orders?a=1", "orders:read")
	f, res := w.h.Serve(context.Background(), r)
	if res != nil {
		t.Fatalf("refused: %d %s", res.Status, res.Body)
	}
	if f.URL != "http://127.0.0.1:9/base/v1/orders?a=1" || !f.NoBody {
		t.Errorf("forward = %s (NoBody %v)", f.URL, f.NoBody)
	}
	for name, want := range map[string]string{"X-Keyless-Sub": "alice", "X-Keyless-Client": "app1", "X-Keyless-Scope": "orders:read",
		"X-Keyless-Lease": "lease-1", "X-Api-Key": "origin-secret", "accept": "application/json"} {
		if got := header(f.Header, name); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"authorization", "dpop", "x_keyless_sub", "cookie", "host"} {
		if got := header(f.Header, name); len(got) != 0 {
			t.Errorf("%s forwarded: %q", name, got)
		}
	}
	// The same proof again is a replay.
	if _, res := w.h.Serve(context.Background(), r); res == nil || res.Status != 401 || !strings.Contains(header(res.Header, "WWW-Authenticate")[0], "invalid_dpop_proof") {
		t.Errorf("replay = %+v", res)
	}
}

func TestServeRefusesAndRevokes(t *testing.T) {
	w := newWorld(t, map[string]string{EnvRevocationTTL: "0s"})
	ctx := context.Background()
	if _, res := w.h.Serve(ctx, &Request{Method: "GET", URL: "https://api.example.test/v1/orders"}); res == nil || res.Status != 401 {
		t.Fatalf("no credentials = %+v", res)
	}
	// A revocation pushed by the issuer, then the lease is refused.
	push := &Request{Method: "POST", URL: "https://api.example.test" + RevocationPath,
		Header:   map[string][]string{"authorization": {"Bearer push-token"}},
		ReadBody: bodyOf(`{"kind":"lease","value":"lease-1","until":` + itoa(time.Now().Add(time.Hour).Unix()) + `}`)}
	if _, res := w.h.Serve(ctx, push); res == nil || res.Status != 204 {
		t.Fatalf("push = %+v", res)
	}
	bad := *push
	bad.Header = map[string][]string{"authorization": {"Bearer nope"}}
	if _, res := w.h.Serve(ctx, &bad); res == nil || res.Status != 401 {
		t.Fatalf("push with a wrong token = %+v", res)
	}
	_, res := w.h.Serve(ctx, w.request(t, "GET", "/v1/orders", "orders:read"))
	if res == nil || res.Status != 401 || !strings.Contains(string(res.Body), "revoked") {
		t.Fatalf("revoked lease = %+v", res)
	}
}

func TestLoadConfigRefusesWhatTheEdgeCannotDo(t *testing.T) {
	_, err := LoadConfig(func(k string) string {
		if k == EnvProxy {
			return "public_url: https://api.example.test\nupstreams: {a: {url: 'http://x', credential: {header: X-K, value_file: /k}}}\nroutes: [{path: /x, upstream: a, scopes: [s]}]\n"
		}
		return ""
	})
	for _, want := range []string{"value_file", "token.issuer"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadConfig error %v, want it to name %s", err, want)
		}
	}
}

func TestServeNonce(t *testing.T) {
	cfg := "dpop:\n  nonce:\n    enabled: true\n"
	w := newWorldWith(t, cfg, map[string]string{EnvNonceKey: strings.Repeat("k", 32)})
	_, res := w.h.Serve(context.Background(), w.request(t, "GET", "/v1/orders", "orders:read"))
	if res == nil || res.Status != 401 || !strings.Contains(header(res.Header, "WWW-Authenticate")[0], "use_dpop_nonce") {
		t.Fatalf("proof without nonce = %+v", res)
	}
	n := header(res.Header, "DPoP-Nonce")
	if len(n) != 1 || n[0] == "" {
		t.Fatalf("DPoP-Nonce = %q", n)
	}
	tok, _, _ := w.minter.Issue(context.Background(), token.Spec{Subject: "alice", ClientID: "app1", Scope: []string{"orders:read"},
		Audience: []string{"https://api.example.test"}, JKT: w.signer.PublicJWK().Thumbprint(), LeaseID: "lease-1"})
	proof, _ := dpop.NewProof(w.signer, "GET", "https://api.example.test/v1/orders", dpop.ProofOptions{AccessToken: tok, Nonce: n[0]})
	r := &Request{Method: "GET", URL: "https://api.example.test/v1/orders", Header: map[string][]string{"Authorization": {"DPoP " + tok}, "DPoP": {proof}}}
	if f, res := w.h.Serve(context.Background(), r); res != nil || len(header(f.AddResponse, "DPoP-Nonce")) != 1 {
		t.Fatalf("proof with nonce = %+v, %+v", f, res)
	}
	if _, err := LoadConfig(func(k string) string {
		if k == EnvProxy {
			return w.config
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), EnvNonceKey) {
		t.Errorf("nonce without key: %v", err)
	}
}

// BenchmarkServe is the check chain's own cost natively (ES256 through Go
// here, WebCrypto in the Worker): a cached lease, a fresh proof each time.
func BenchmarkServe(b *testing.B) {
	w := newWorld(b, nil)
	reqs := make([]*Request, b.N)
	tok, _, _ := w.minter.Issue(context.Background(), token.Spec{Subject: "alice", ClientID: "app1", Scope: []string{"orders:read"},
		Audience: []string{"https://api.example.test"}, JKT: w.signer.PublicJWK().Thumbprint(), LeaseID: "lease-1"})
	for i := range reqs {
		reqs[i] = w.withToken(b, "GET", "/v1/orders", tok)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, res := w.h.Serve(context.Background(), reqs[i]); res != nil {
			b.Fatalf("refused: %d %s", res.Status, res.Body)
		}
	}
}

// Rate limits: a subject's bucket, then its app's, as the process proxy
// does; each answer carries the tighter bucket's RateLimit-* fields, and
// the first request past a burst is 429 with Retry-After.
func TestServeRateLimits(t *testing.T) {
	for _, tc := range []struct {
		path  string
		burst int
		subs  []string // one request per entry, in order
	}{
		{"/limited/subject", 2, []string{"alice", "alice", "alice"}},
		{"/limited/app", 3, []string{"alice", "bob", "carol", "dave"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := newWorld(t, nil)
			for i, sub := range tc.subs {
				tok, _, err := w.minter.Issue(context.Background(), token.Spec{Subject: sub, ClientID: "app1", Scope: []string{"orders:read"},
					Audience: []string{"https://api.example.test"}, JKT: w.signer.PublicJWK().Thumbprint(), LeaseID: "lease-" + sub})
				if err != nil {
					t.Fatal(err)
				}
				f, res := w.h.Serve(context.Background(), w.withToken(t, "GET", tc.path, tok))
				if i < tc.burst {
					if res != nil {
						t.Fatalf("request %d refused: %d %s", i, res.Status, res.Body)
					}
					if got := header(f.AddResponse, "RateLimit-Remaining"); len(got) != 1 || got[0] != itoa(int64(tc.burst-i-1)) {
						t.Errorf("request %d RateLimit-Remaining = %q", i, got)
					}
					continue
				}
				if res == nil || res.Status != 429 || len(header(res.Header, "Retry-After")) != 1 || !strings.Contains(string(res.Body), "rate_limited") {
					t.Fatalf("request %d past the burst = %+v, %+v", i, f, res)
				}
			}
		})
	}
	// Another subject keeps its own bucket on the per-subject route.
	w := newWorld(t, nil)
	for range 2 {
		w.h.Serve(context.Background(), w.request(t, "GET", "/limited/subject", "orders:read"))
	}
	tok, _, _ := w.minter.Issue(context.Background(), token.Spec{Subject: "bob", ClientID: "app1", Scope: []string{"orders:read"},
		Audience: []string{"https://api.example.test"}, JKT: w.signer.PublicJWK().Thumbprint(), LeaseID: "lease-bob"})
	if _, res := w.h.Serve(context.Background(), w.withToken(t, "GET", "/limited/subject", tok)); res != nil {
		t.Errorf("bob after alice's burst = %d %s", res.Status, res.Body)
	}
}

// Every decision has an audit line in the proxy's fields (docs/audit.md)
// that `keyless audit` reads: allow with who and what, deny with the
// rule, error (5xx) at WARN; never the token itself.
func TestAuditLines(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	r := w.request(t, "GET", "/v1/orders", "orders:read")
	f, res := w.h.Serve(ctx, r)
	if res != nil {
		t.Fatalf("refused: %+v", res)
	}
	tok := strings.TrimPrefix(r.Header["authorization"][0], "DPoP ")
	denied := w.request(t, "GET", "/admin/x", "orders:read")
	_, dres := w.h.Serve(ctx, denied)
	for _, tc := range []struct {
		name   string
		line   []byte
		fields map[string]string
	}{
		{"allow", f.Audit.Line(200), map[string]string{"decision": "allow", "status": "200", "method": "GET", "path": "/v1/orders",
			"route": "orders-read", "client": "app1", "sub": "alice", "lease": "lease-1", "rule": ""}},
		{"deny", dres.Audit.Line(dres.Status), map[string]string{"decision": "deny", "status": "403", "rule": "scope", "sub": "alice"}},
		{"upstream error", w.h.UpstreamFailed(r, f, errors.New("dial refused")).Audit.Line(502),
			map[string]string{"decision": "error", "status": "502", "rule": "upstream", "cause": "dial refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := audit.Parse(tc.line)
			if err != nil {
				t.Fatalf("%s: %v", tc.line, err)
			}
			if l.Event != audit.ProxyEvent {
				t.Errorf("event %q", l.Event)
			}
			for k, want := range tc.fields {
				if got := l.Field(k); got != want {
					t.Errorf("%s = %q, want %q (%s)", k, got, want, tc.line)
				}
			}
			if len(l.Field("token_sha256")) != 16 || strings.Contains(string(tc.line), tok) {
				t.Errorf("token: %s", tc.line)
			}
		})
	}
}
