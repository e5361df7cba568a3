package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// The reference test configuration.
const (
	publicURL = "https://api.example.test"
	issuer    = "https://auth.example.test"
	appOrigin = "https://app.example.test"
	appID     = "app1"
	// aliasHost is a configured alias of the public host (Config.Hosts).
	aliasHost = "alias.example.test"
)

// clock is an injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// seen is what the echo backend received.
type seen struct {
	Method     string
	RequestURI string
	Host       string
	Header     http.Header
	Trailer    http.Header
	Body       string
}

// echo is the backend: it records every request and counts hits (NF = the
// count is unchanged).
type echo struct {
	srv  *httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	reqs []seen
}

func newEcho(t *testing.T) *echo {
	e := &echo{}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.reqs = append(e.reqs, seen{r.Method, r.RequestURI, r.Host, r.Header.Clone(), r.Trailer.Clone(), string(body)})
		e.mu.Unlock()
		w.Header().Set("Server", "secret-backend/1.0")
		w.Header().Set("X-Powered-By", "php/5")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("X-Keyless-Sub", "backend-forged")
		switch {
		case strings.HasPrefix(r.URL.Path, "/ws"):
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			for {
				mt, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				reply := []byte(r.Header.Get("X-Keyless-Sub") + ":" + string(msg))
				if c.WriteMessage(mt, reply) != nil {
					return
				}
			}
		case r.URL.Path == "/upgrade-refuse":
			w.WriteHeader(http.StatusUpgradeRequired)
		case r.URL.Path == "/slow":
			<-r.Context().Done()
		case strings.HasPrefix(r.URL.Path, "/v1/users/"):
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":1,"name":"Ann","email":"ann@example.test","address":{"city":"X","street":"1 Main"}}`)
		case r.URL.Path == "/v1/html":
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, `<p>ann@example.test</p>`)
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
		}
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *echo) last(t *testing.T) seen {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.reqs) == 0 {
		t.Fatal("backend saw no request")
	}
	return e.reqs[len(e.reqs)-1]
}

// harness is one proxy in front of the echo backend, with an issuer whose
// JWKS the proxy fetches, a fixed clock and a client key.
type harness struct {
	t       *testing.T
	h2      bool // served over TLS with HTTP/2 (withH2)
	clock   *clock
	echo    *echo
	keys    *token.KeySet
	minter  *token.Minter
	jwks    *httptest.Server
	remote  *token.RemoteJWKS
	proxy   *Proxy
	srv     *httptest.Server
	key     *ecdsa.PrivateKey
	signer  dpop.Signer
	revoked *memstore.Revocations
	replay  *memstore.Replay
	logs    *syncBuffer
	cfg     Config
	opts    Options
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testConfig is the reference configuration.
func testConfig(echoURL string) Config {
	return Config{
		PublicURL: publicURL,
		Upstreams: map[string]Upstream{
			"echo": {URL: echoURL},
			"down": {URL: "http://127.0.0.1:1", DialTimeout: time.Second},
			"slow": {URL: echoURL, ResponseHeaderTimeout: 200 * time.Millisecond},
		},
		Routes: []Route{
			{Name: "orders-read", Methods: []string{"GET"}, Path: "/v1/orders", Upstream: "echo", Scopes: []string{"orders:read"}},
			{Name: "orders-write", Methods: []string{"POST"}, Path: "/v1/orders", Upstream: "echo", Scopes: []string{"orders:write"},
				ContentTypes: []string{"application/json"}, MaxBodyBytes: 1024},
			{Name: "admin", Methods: []string{"*"}, Path: "/admin/**", Upstream: "echo", Scopes: []string{"admin"}},
			{Name: "public", Methods: []string{"GET", "POST"}, Path: "/public/**", Upstream: "echo", Anonymous: true},
			{Name: "ws", Path: "/ws", Upstream: "echo", Scopes: []string{"orders:read"}, WebSocket: true},
			{Name: "upgrade-refuse", Path: "/upgrade-refuse", Upstream: "echo", Scopes: []string{"orders:read"}, WebSocket: true},
			{Name: "api", Methods: []string{"*"}, Path: "/api/v1/**", StripPrefix: "/api", Upstream: "echo", Scopes: []string{"orders:read"}},
			{Name: "users", Path: "/v1/users/*", Upstream: "echo", Scopes: []string{"users:read"}, Redact: []string{"email", "address.street"}},
			{Name: "html", Path: "/v1/html", Upstream: "echo", Scopes: []string{"users:read"}, Redact: []string{"email"}},
			{Name: "limited", Path: "/limited", Upstream: "echo", Scopes: []string{"orders:read"},
				RateLimit: &RateLimit{PerSubject: ratelimit.Limit{Rate: 1, Burst: 2}}},
			{Name: "down", Path: "/down", Upstream: "down", Scopes: []string{"orders:read"}},
			{Name: "slow", Path: "/slow", Upstream: "slow", Scopes: []string{"orders:read"}},
			{Name: "preview", Path: "/preview", Upstream: "echo", Scopes: []string{"orders:read"},
				Preview: &Preview{Body: `{"orders":[{"id":"example"}]}`}},
			{Name: "cookies", Path: "/cookies", Upstream: "echo", Scopes: []string{"orders:read"}, AllowCookies: true},
		},
		Headers: Headers{Scrub: []string{"User-Agent", "Referer"}},
		CORS:    CORS{Apps: map[string][]string{appID: {appOrigin}, "other-app": {"https://other.example.test"}}},
	}
}

type harnessOption func(h *harness)

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, clock: newClock(), echo: newEcho(t), logs: &syncBuffer{}}
	var err error
	h.keys, err = token.NewKeySet(h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.minter = &token.Minter{Keys: h.keys, Issuer: issuer, Now: h.clock.Now}
	h.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := h.keys.JWKS()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(b)
	}))
	t.Cleanup(h.jwks.Close)
	h.remote = &token.RemoteJWKS{URL: h.jwks.URL, Client: h.jwks.Client(), Now: h.clock.Now}
	h.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h.signer, _ = dpop.NewECDSASigner(h.key)
	h.revoked = &memstore.Revocations{Now: h.clock.Now}
	h.replay = &memstore.Replay{Now: h.clock.Now}
	h.cfg = testConfig(h.echo.srv.URL)
	// The listener exists before the proxy, so its address can be an
	// alias of the public host: the test client addresses it directly.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.cfg.Hosts = []string{ln.Addr().String(), aliasHost}
	h.opts = Options{
		Tokens:      &token.JWTVerifier{Keys: h.remote, Issuer: issuer, Audience: publicURL, Now: h.clock.Now},
		Replay:      h.replay,
		Revocations: h.revoked,
		Now:         h.clock.Now,
		Logger:      NewAuditLogger(h.logs),
	}
	for _, o := range opts {
		o(h)
	}
	h.proxy, err = New(h.cfg, h.opts)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: h.proxy}}
	h.srv.Config.MaxHeaderBytes = h.proxy.Config().Server.MaxHeaderBytes
	h.srv.Config.ReadHeaderTimeout = 2 * time.Second
	if h.h2 {
		h.srv.EnableHTTP2 = true
		h.srv.StartTLS()
	} else {
		h.srv.Start()
	}
	t.Cleanup(h.srv.Close)
	return h
}

// withH2 serves the proxy over TLS with HTTP/2; h.do then speaks h2.
func withH2(h *harness) { h.h2 = true }

func (h *harness) jkt() string { return h.signer.PublicJWK().Thumbprint() }

// spec is a lease for the harness key with scopes.
func (h *harness) spec(scopes ...string) token.Spec {
	return token.Spec{
		Subject: "alice", Audience: []string{publicURL}, ClientID: appID, Scope: scopes,
		JKT: h.jkt(), LeaseID: "lease-" + randomString(), TTL: 5 * time.Minute,
	}
}

// lease mints a lease; edit changes the spec first.
func (h *harness) lease(edit func(*token.Spec), scopes ...string) string {
	h.t.Helper()
	s := h.spec(scopes...)
	if edit != nil {
		edit(&s)
	}
	raw, _, err := h.minter.Issue(context.Background(), s)
	if err != nil {
		h.t.Fatal(err)
	}
	return raw
}

// proof signs a proof for method and path on the public URL.
func (h *harness) proof(method, path, tok string) string {
	h.t.Helper()
	return h.proofWith(h.signer, method, publicURL+path, dpop.ProofOptions{AccessToken: tok, Now: h.clock.Now()})
}

func (h *harness) proofWith(s dpop.Signer, method, htu string, o dpop.ProofOptions) string {
	h.t.Helper()
	if o.Now.IsZero() {
		o.Now = h.clock.Now()
	}
	p, err := dpop.NewProof(s, method, htu, o)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// request builds a request to the proxy for path (which may hold a query).
func (h *harness) request(method, path string) *http.Request {
	r, err := http.NewRequest(method, h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// authed is a request with a fresh lease for scopes and a valid proof.
func (h *harness) authed(method, path string, scopes ...string) *http.Request {
	tok := h.lease(nil, scopes...)
	r := h.request(method, path)
	p, _, _ := strings.Cut(path, "?")
	r.Header.Set("Authorization", "DPoP "+tok)
	r.Header.Set("DPoP", h.proof(method, p, tok))
	return r
}

func (h *harness) do(r *http.Request) *http.Response {
	h.t.Helper()
	res, err := h.srv.Client().Do(r)
	if err != nil {
		h.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res
}

// raw sends bytes on a fresh TCP connection and reads one response: for
// requests Go's client would normalize.
func (h *harness) raw(req string) *http.Response {
	h.t.Helper()
	c, err := net.DialTimeout("tcp", h.srv.Listener.Addr().String(), 2*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		h.t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		h.t.Fatalf("reading response: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res
}

// rawGet is a raw HTTP/1.1 request for target with a lease and a proof for
// htuPath.
func (h *harness) rawAuthed(method, target, htuPath string, scopes ...string) string {
	tok := h.lease(nil, scopes...)
	return method + " " + target + " HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: DPoP " + tok +
		"\r\nDPoP: " + h.proof(method, htuPath, tok) + "\r\nConnection: close\r\n\r\n"
}

func randomString() string {
	var b [9]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// wwwAuthError extracts error="..." from WWW-Authenticate; ok is false
// when the header is absent.
func wwwAuthError(res *http.Response) (code string, ok bool) {
	v := res.Header.Values("WWW-Authenticate")
	if len(v) == 0 {
		return "", false
	}
	_, rest, found := strings.Cut(v[0], `error="`)
	if !found {
		return "", true
	}
	code, _, _ = strings.Cut(rest, `"`)
	return code, true
}

// signJWS signs header and claims as an ES256 compact JWS with key.
func signJWS(key *ecdsa.PrivateKey, header, claims any) string {
	enc := base64.RawURLEncoding
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	input := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	sum := sha256.Sum256([]byte(input))
	r, s, _ := ecdsa.Sign(rand.Reader, key, sum[:])
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig)
}

// proofParts are a proof's header and claims, to be edited and signed by
// signJWS: every proof-check row starts from a valid one.
func (h *harness) proofParts(method, path, tok string) (map[string]any, map[string]any) {
	jwk := h.signer.PublicJWK()
	hdr := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": map[string]any{"kty": "EC", "crv": "P-256", "x": jwk.X, "y": jwk.Y}}
	cl := map[string]any{"jti": randomString(), "htm": method, "htu": publicURL + path, "iat": h.clock.Now().Unix(), "ath": dpop.AccessTokenHash(tok)}
	return hdr, cl
}

// edKey is an Ed25519 key.
func edKey() ed25519.PrivateKey {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	return k
}

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func newECKey() (*ecdsa.PrivateKey, dpop.Signer) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := dpop.NewECDSASigner(k)
	return k, s
}

// counter counts requests: a trap listener for outbound-request rows.
type counter struct{ n atomic.Int64 }

func (c *counter) ServeHTTP(http.ResponseWriter, *http.Request) { c.n.Add(1) }

// nopVerifier refuses everything.
type nopVerifier struct{}

func (nopVerifier) Verify(context.Context, string) (*token.Claims, error) {
	return nil, token.ErrInvalidToken
}
