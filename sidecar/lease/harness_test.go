package lease

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

	"github.com/keyless-dev/keyless/sidecar/authserver"
	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// The reference test configuration: the proxy's audience.
const apiAud = "https://api.example.test"

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

const testPolicy = `
defaults:
  max_ttl: 15m
  renew_limit: 8h
apps:
  demo-app:
    resources: [https://api.example.test, https://api2.example.test]
    scopes: {orders:read: read, orders:write: write, admin: write}
    quota: {per_subject_per_hour: 20}
    rules:
      - name: no-mallory
        effect: deny
        subjects: [mallory]
      - name: ops-write
        subjects: [alice]
        scopes: [orders:read, orders:write, admin]
        write: true
        max_ttl: 5m
      - name: idp-ops
        groups: [ops-team]
        scopes: [orders:read, orders:write]
        write: true
      - name: read
        subjects: ["*"]
        scopes: [orders:read]
      - name: corp-ops
        issuer: corp
        groups: [ops]
        scopes: [orders:read, orders:write]
        write: true
      - name: corp-read
        issuer: corp
        subjects: ["*"]
        scopes: [orders:read]
      - name: entra-read
        issuer: entra
        subjects: ["*"]
        scopes: [orders:read]
      - name: partner-read
        issuer: partner
        subjects: ["*"]
        scopes: [orders:read]
  other-app:
    scopes: {orders:read: read}
    rules: [{name: all, subjects: ["*"], scopes: [orders:read]}, {name: corp-all, issuer: corp, subjects: ["*"], scopes: [orders:read]}]
  preview-app:
    preview: true
    scopes: {orders:read: read}
    rules: [{name: all, subjects: ["*"], scopes: [orders:read]}]
  quota-app:
    scopes: {orders:read: read}
    quota: {per_subject_per_hour: 2}
    rules: [{name: all, subjects: ["*"], scopes: [orders:read]}]
  short-app:
    renew_limit: 20m
    no_renewal: false
    scopes: {orders:read: read}
    rules: [{name: all, subjects: ["*"], scopes: [orders:read]}]
`

// harness is the `keyless dev` wiring in miniature: the embedded
// authorization server and the vending service on one loopback listener
// whose URL is the issuer (and the vending BaseURL), sharing one bbolt
// file for revocations and renewals.
type harness struct {
	t     testing.TB
	clk   *clock
	srv   *httptest.Server
	as    *authserver.Server
	svc   *Service
	db    *boltstore.DB
	pol   *policy.Policy
	polMu sync.Mutex
	audit *bytes.Buffer
	amu   sync.Mutex
	extra []Issuer
	nonce NonceSource
	// memRenewals keeps renewals in memory instead of the bbolt file.
	memRenewals bool
	// wrapDB, when set, wraps the bbolt database every store uses (fault
	// injection).
	wrapDB func(DB) DB
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

func newHarness(t testing.TB, opts ...func(*harness)) *harness {
	t.Helper()
	h := &harness{t: t, clk: &clock{t: time.Unix(1_800_000_000, 0)}, audit: &bytes.Buffer{}}
	for _, o := range opts {
		o(h)
	}
	p, err := policy.Parse("test-policy.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	h.pol = p
	srv := httptest.NewUnstartedServer(nil)
	db, err := boltstore.Open(filepath.Join(t.TempDir(), boltstore.FileName), boltstore.Options{Now: h.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	cfg := &config.Config{
		Issuer: config.Issuer{URL: "http://" + srv.Listener.Addr().String()},
		Clients: []config.Client{
			{ID: "demo-app", Scopes: []string{"orders:read", "orders:write", "admin"}},
			{ID: "other-app", Scopes: []string{"orders:read"}},
			{ID: "preview-app", Scopes: []string{"orders:read"}},
		},
		Users: []config.User{{Name: "alice", PasswordHash: string(pw)}},
	}
	audit := slog.New(slog.NewJSONHandler(syncWriter{&h.amu, h.audit}, nil))
	var sdb DB = db
	if h.wrapDB != nil {
		sdb = h.wrapDB(db)
	}
	as, err := authserver.New(context.Background(), authserver.Options{
		Config: cfg, DB: sdb, Revocations: sdb, Now: h.clk.now, Audit: audit,
	})
	if err != nil {
		t.Fatal(err)
	}
	issuers := append([]Issuer{{
		Issuer: as.Issuer(), Verifier: as.AccessTokenVerifier(), Revoked: as.Revoked,
	}}, h.extra...)
	var renewals RenewalStore = &KVRenewals{KV: sdb, Now: h.clk.now}
	if h.memRenewals {
		renewals = NewMemRenewals(h.clk.now)
	}
	svc, err := New(Options{
		Policy:      h.policy,
		Minter:      as.Minter(),
		Audience:    apiAud,
		BaseURL:     as.Issuer(),
		Issuers:     issuers,
		Revocations: sdb,
		Replay:      &memstore.Replay{Now: h.clk.now},
		Renewals:    renewals,
		Nonce:       h.nonce,
		AdminToken:  "admin-secret",
		Audit:       audit,
		Now:         h.clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	svc.RegisterGrants(as)
	mux := http.NewServeMux()
	mux.Handle("/admin/v1/lease/", svc.AdminHandler())
	mux.Handle("/v1/", svc.Handler())
	mux.Handle("/", as.Handler())
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(func() { srv.Close(); db.Close() })
	h.srv, h.as, h.svc, h.db = srv, as, svc, db
	return h
}

func (h *harness) policy() *policy.Policy {
	h.polMu.Lock()
	defer h.polMu.Unlock()
	return h.pol
}

func (h *harness) setPolicy(src string) {
	p, err := policy.Parse("test-policy.yaml", []byte(src))
	if err != nil {
		h.t.Fatal(err)
	}
	h.polMu.Lock()
	h.pol = p
	h.polMu.Unlock()
}

func (h *harness) auditLog() string {
	h.amu.Lock()
	defer h.amu.Unlock()
	return h.audit.String()
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

func jkt(k dpop.Signer) string { return k.PublicJWK().Thumbprint() }

// login mints what the device flow would give sub: an access token of the
// embedded issuer for client, bound to k.
func (h *harness) login(sub, client string, scope []string, k dpop.Signer) string {
	h.t.Helper()
	raw, _, err := h.as.Minter().Issue(context.Background(), token.Spec{
		Subject: sub, Audience: []string{h.as.Issuer()}, ClientID: client, Scope: scope,
		JKT: jkt(k), TTL: 10 * time.Minute,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return raw
}

func (h *harness) proof(k dpop.Signer, htu string) string {
	h.t.Helper()
	p, err := dpop.NewProof(k, http.MethodPost, htu, dpop.ProofOptions{Now: h.clk.now()})
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

// postJSON sends a JSON body to a vending endpoint with a fresh proof by k
// (nil: no proof) for BaseURL + path.
func (h *harness) postJSON(path string, body any, k dpop.Signer, hdr ...string) result {
	h.t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		b, _ = json.Marshal(v)
	}
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if k != nil {
		req.Header.Set("DPoP", h.proof(k, h.as.Issuer()+path))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return h.do(req)
}

func (h *harness) postForm(path string, form url.Values, k dpop.Signer) result {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if k != nil {
		req.Header.Set("DPoP", h.proof(k, h.as.Issuer()+path))
	}
	return h.do(req)
}

func (h *harness) do(req *http.Request) result {
	h.t.Helper()
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

// lease asks for a lease with k's proof.
func (h *harness) lease(k dpop.Signer, body map[string]any) result {
	h.t.Helper()
	return h.postJSON(PathLease, body, k)
}

// verifyLease checks a minted lease the way the proxy does.
func (h *harness) verifyLease(raw, aud string) *token.Claims {
	h.t.Helper()
	v := &token.JWTVerifier{Keys: h.as.Keys(), Issuer: h.as.Issuer(), Audience: aud, Now: h.clk.now}
	c, err := v.Verify(context.Background(), raw)
	if err != nil {
		h.t.Fatalf("lease does not verify for %s: %v", aud, err)
	}
	return c
}

// wantError checks an OAuth error answer: status, code, no-store.
func wantError(t testing.TB, r result, status int, code string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %d %s, want %d %q", r.status, r.raw, status, code)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	for _, c := range []byte(r.str("error_description")) {
		if c < 0x20 || c == '"' || c == '\\' || c > 0x7e {
			t.Errorf("error_description %q has a character RFC 6749 section 5.2 forbids", r.str("error_description"))
			break
		}
	}
	if r.header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type = %q", r.header.Get("Content-Type"))
	}
}
