package lease

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyless-dev/keyless/sidecar/authserver"
	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/internal/oauthtest"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/store/boltstore"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// The reference test configuration: the proxy's audience.
const apiAud = "https://api.example.test"

// clock is the shared settable clock: tests never sleep.
type clock = oauthtest.Clock

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
	audit *oauthtest.SyncBuffer
	extra []Issuer
	nonce NonceSource
	// memRenewals keeps renewals in memory instead of the bbolt file.
	memRenewals bool
	// wrapDB, when set, wraps the bbolt database every store uses (fault
	// injection).
	wrapDB func(DB) DB
}

func newHarness(t testing.TB, opts ...func(*harness)) *harness {
	t.Helper()
	h := &harness{t: t, clk: &clock{T: time.Unix(1_800_000_000, 0)}, audit: &oauthtest.SyncBuffer{}}
	for _, o := range opts {
		o(h)
	}
	p, err := policy.Parse("test-policy.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	h.pol = p
	srv := httptest.NewUnstartedServer(nil)
	db, err := boltstore.Open(filepath.Join(t.TempDir(), boltstore.FileName), boltstore.Options{Now: h.clk.Now})
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
	audit := h.audit.Logger()
	var sdb DB = db
	if h.wrapDB != nil {
		sdb = h.wrapDB(db)
	}
	as, err := authserver.New(context.Background(), authserver.Options{
		Config: cfg, DB: sdb, Revocations: sdb, Now: h.clk.Now, Audit: audit,
	})
	if err != nil {
		t.Fatal(err)
	}
	issuers := append([]Issuer{{
		Issuer: as.Issuer(), Verifier: as.AccessTokenVerifier(), Revoked: as.Revoked,
	}}, h.extra...)
	var renewals RenewalStore = &KVRenewals{KV: sdb, Now: h.clk.Now}
	if h.memRenewals {
		renewals = NewMemRenewals(h.clk.Now)
	}
	svc, err := New(Options{
		Policy:          h.policy,
		Minter:          as.Minter(),
		Audience:        apiAud,
		BaseURL:         as.Issuer(),
		Issuers:         issuers,
		Revocations:     sdb,
		ListRevocations: db.ListRevocations,
		Replay:          &memstore.Replay{Now: h.clk.Now},
		Renewals:        renewals,
		Nonce:           h.nonce,
		AdminToken:      "admin-secret",
		Audit:           audit,
		Now:             h.clk.Now,
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
	return h.audit.String()
}

var newKey = oauthtest.NewKey

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
	return oauthtest.Proof(h.t, k, htu, h.clk.Now())
}

// result is an answer read as JSON.
type result = oauthtest.Response

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
	req := oauthtest.FormRequest(h.srv.URL+path, form)
	if k != nil {
		req.Header.Set("DPoP", h.proof(k, h.as.Issuer()+path))
	}
	return h.do(req)
}

func (h *harness) do(req *http.Request) result {
	h.t.Helper()
	return oauthtest.Do(h.t, h.srv.Client(), req)
}

// lease asks for a lease with k's proof.
func (h *harness) lease(k dpop.Signer, body map[string]any) result {
	h.t.Helper()
	return h.postJSON(PathLease, body, k)
}

// verifyLease checks a minted lease the way the proxy does.
func (h *harness) verifyLease(raw, aud string) *token.Claims {
	h.t.Helper()
	v := &token.JWTVerifier{Keys: h.as.Keys(), Issuer: h.as.Issuer(), Audience: aud, Now: h.clk.Now}
	c, err := v.Verify(context.Background(), raw)
	if err != nil {
		h.t.Fatalf("lease does not verify for %s: %v", aud, err)
	}
	return c
}

// wantError checks an OAuth error answer (status, code, no-store, a
// header-safe description) and stops the test on the wrong status or code.
func wantError(t testing.TB, r result, status int, code string) {
	t.Helper()
	if !oauthtest.WantError(t, r, status, code) {
		t.FailNow()
	}
}
