package authserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
)

// clock is an injectable, settable clock. Tests never sleep.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const testPassword = "correct horse"

// testConfig: demo-app as in the sandbox, a second public client, a
// confidential resource server (for introspection), and alice.
func testConfig(t testing.TB) *config.Config {
	t.Helper()
	pw, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := bcrypt.GenerateFromPassword([]byte("rs-secret"), bcrypt.MinCost)
	return &config.Config{
		Clients: []config.Client{
			{ID: "demo-app", Name: "Demo micro app", Scopes: []string{"api:read", "api:write"}, DefaultScopes: []string{"api:read"}},
			{ID: "other-app", Scopes: []string{"api:read"}, DefaultScopes: []string{"api:read"}},
			{ID: "rs", Scopes: []string{"introspect"}, SecretHash: string(secret)},
		},
		Users: []config.User{{Name: "alice", PasswordHash: string(pw)}},
	}
}

type harness struct {
	t      testing.TB
	srv    *httptest.Server
	s      *Server
	clk    *clock
	dir    string
	db     *boltstore.DB
	audit  *bytes.Buffer
	auditM sync.Mutex
	opts   func(*Options)
	// client, when set, sends the requests (from another source address).
	client *http.Client
}

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// newHarness starts a server on a loopback httptest listener whose URL is
// the issuer, backed by a bbolt file in a temp dir.
func newHarness(t testing.TB, opts func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, clk: &clock{t: time.Unix(1_800_000_000, 0)}, dir: t.TempDir(), audit: &bytes.Buffer{}, opts: opts}
	h.start()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) start() { h.startWith(boltstore.Options{Now: h.clk.now}) }

func (h *harness) startWith(bo boltstore.Options) {
	t := h.t
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	db, err := boltstore.Open(filepath.Join(h.dir, boltstore.FileName), bo)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Issuer.URL = "http://" + srv.Listener.Addr().String()
	o := Options{Config: cfg, DB: db, Revocations: db, Now: h.clk.now, AdminToken: "admin-secret-token",
		Audit: slog.New(slog.NewJSONHandler(syncWriter{&h.auditM, h.audit}, nil))}
	if h.opts != nil {
		h.opts(&o)
	}
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", s.AdminHandler())
	mux.Handle("/", s.Handler())
	srv.Config.Handler = mux
	srv.Start()
	h.srv, h.s, h.db = srv, s, db
}

func (h *harness) stop() {
	if h.srv != nil {
		h.srv.Close()
		h.db.Close()
		h.srv = nil
	}
}

// restart closes the server and the database and opens them again from
// the same data dir (on a new port, so the issuer URL changes: only
// stored state carries over).
func (h *harness) restart() {
	h.stop()
	h.start()
}

func newKey(t testing.TB) dpop.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewECDSASigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (h *harness) proof(k dpop.Signer, path string) string {
	h.t.Helper()
	p, err := dpop.NewProof(k, http.MethodPost, h.s.Issuer()+path, dpop.ProofOptions{Now: h.clk.now()})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

type result struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r result) str(k string) string { s, _ := r.body[k].(string); return s }

// post sends a form; k, when set, adds a fresh DPoP proof for the path.
func (h *harness) post(path string, form url.Values, k dpop.Signer, hdr ...string) result {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if k != nil {
		req.Header.Set("DPoP", h.proof(k, path))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return h.do(req)
}

func (h *harness) do(req *http.Request) result {
	h.t.Helper()
	c := h.client
	if c == nil {
		c = h.srv.Client()
	}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

func (h *harness) get(path string, hdr ...string) result {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return h.do(req)
}

// authorize starts a device flow for client, optionally with a DPoP proof.
func (h *harness) authorize(client string, k dpop.Signer, extra ...string) DeviceAuthorization {
	h.t.Helper()
	f := url.Values{"client_id": {client}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	r := h.post("/device_authorization", f, k)
	if r.status != 200 {
		h.t.Fatalf("device authorization: %d %s", r.status, r.raw)
	}
	var d DeviceAuthorization
	_ = json.Unmarshal([]byte(r.raw), &d)
	return d
}

func (h *harness) poll(client, deviceCode string, k dpop.Signer) result {
	h.t.Helper()
	return h.post("/token", url.Values{"grant_type": {GrantDeviceCode}, "client_id": {client}, "device_code": {deviceCode}}, k)
}

func (h *harness) refresh(client, rt string, k dpop.Signer) result {
	h.t.Helper()
	return h.post("/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {client}, "refresh_token": {rt}}, k)
}

// tokens runs the flow to a token response for demo-app and key k.
func (h *harness) tokens(k dpop.Signer) result {
	h.t.Helper()
	d := h.authorize("demo-app", k)
	if err := h.s.Approve(context.Background(), d.UserCode, "alice", "test"); err != nil {
		h.t.Fatal(err)
	}
	r := h.poll("demo-app", d.DeviceCode, k)
	if r.status != 200 {
		h.t.Fatalf("token: %d %s", r.status, r.raw)
	}
	return r
}

// wantErr checks an RFC 6749 section 5.2 error answer.
func wantErr(t testing.TB, r result, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Errorf("got %d %s, want %d {error: %s}", r.status, r.raw, status, code)
	}
	if cc := r.header.Get("Cache-Control"); status < 500 && status != 429 && cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
}
