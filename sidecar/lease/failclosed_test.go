package lease

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

var errDown = errors.New("store down")

type downRevocations struct{}

func (downRevocations) Revoke(context.Context, store.Revocation, time.Time) error { return errDown }
func (downRevocations) AnyRevoked(context.Context, ...store.Revocation) (bool, error) {
	return false, errDown
}

type downReplay struct{}

func (downReplay) Use(context.Context, string, string, time.Time) error { return errDown }

type downRenewals struct{}

func (downRenewals) Put(context.Context, string, *Renewal) error            { return errDown }
func (downRenewals) Get(context.Context, string) (*Renewal, error)          { return nil, errDown }
func (downRenewals) Rotate(context.Context, string, string, *Renewal) error { return errDown }

// TestStoreDownFailsClosed: when a store cannot answer, the answer is 503,
// never a lease (docs/security.md#d9).
func TestStoreDownFailsClosed(t *testing.T) {
	const iss = "https://auth.example.test"
	clk := &clock{T: time.Unix(1_800_000_000, 0)}
	keys, err := token.NewKeySet(clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse("p.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	minter := &token.Minter{Keys: keys, Issuer: iss, Now: clk.Now}
	k := newKey(t)
	login, _, err := minter.Issue(context.Background(), token.Spec{Subject: "bob", Audience: []string{iss}, ClientID: "demo-app", JKT: jkt(k)})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		revs     store.Revocations
		replay   store.Replay
		renewals RenewalStore
	}{
		"revocations down": {revs: downRevocations{}, replay: &memstore.Replay{Now: clk.Now}},
		"replay down":      {revs: &memstore.Revocations{Now: clk.Now}, replay: downReplay{}},
		"renewals down":    {revs: &memstore.Revocations{Now: clk.Now}, replay: &memstore.Replay{Now: clk.Now}, renewals: downRenewals{}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			svc, err := New(Options{
				Policy: func() *policy.Policy { return pol }, Minter: minter, Audience: apiAud, BaseURL: iss,
				Issuers:     []Issuer{{Issuer: iss, Verifier: &token.JWTVerifier{Keys: keys, Issuer: iss, Audience: iss, Now: clk.Now}}},
				Revocations: tt.revs, Replay: tt.replay, Renewals: tt.renewals, Now: clk.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(svc.Handler())
			defer srv.Close()
			proof, _ := dpop.NewProof(k, http.MethodPost, iss+PathLease, dpop.ProofOptions{Now: clk.Now()})
			req, _ := http.NewRequest(http.MethodPost, srv.URL+PathLease, strings.NewReader(mustJSON(map[string]any{"subject_token": login, "client_id": "demo-app"})))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("DPoP", proof)
			h := &harness{t: t, srv: srv}
			r := h.do(req)
			wantError(t, r, http.StatusServiceUnavailable, CodeUnavailable)
			if r.Str("access_token") != "" {
				t.Fatal("a lease was returned")
			}
		})
	}
}

// fullDisk wraps the real bbolt database and, once full is set, fails
// every commit and revocation the way a full disk does (ENOSPC; the
// transaction's writes are discarded). A real full filesystem needs a mount
// this test cannot make.
type fullDisk struct {
	DB
	full atomic.Bool
}

func errNoSpace() error { return &fs.PathError{Op: "write", Path: "keyless.db", Err: syscall.ENOSPC} }

func (d *fullDisk) Update(ctx context.Context, fn func(store.Tx) error) error {
	return d.DB.Update(ctx, func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if d.full.Load() {
			return errNoSpace()
		}
		return nil
	})
}

func (d *fullDisk) Revoke(ctx context.Context, r store.Revocation, until time.Time) error {
	if d.full.Load() {
		return errNoSpace()
	}
	return d.DB.Revoke(ctx, r, until)
}

// On a full disk the vending endpoints and the token endpoint's exchange
// and renewal answer alike: 503 temporarily_unavailable with Retry-After.
func TestFullDiskOneAnswer(t *testing.T) {
	var disk *fullDisk
	h := newHarness(t, func(h *harness) {
		h.wrapDB = func(db DB) DB { disk = &fullDisk{DB: db}; return disk }
	})
	r0, k := h.leaseFor("alice", "demo-app")
	h.clk.Add(time.Minute)
	disk.full.Store(true)
	check := func(t *testing.T, r result) {
		t.Helper()
		wantError(t, r, http.StatusServiceUnavailable, CodeUnavailable)
		if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("Retry-After = %q, want whole seconds >= 1", r.Header.Get("Retry-After"))
		}
		if r.Str("access_token") != "" {
			t.Error("a token was issued")
		}
	}
	t.Run("lease", func(t *testing.T) {
		k := newKey(t)
		check(t, h.lease(k, map[string]any{"subject_token": h.login("alice", "demo-app", readWrite, k), "client_id": "demo-app"}))
	})
	t.Run("renew", func(t *testing.T) {
		check(t, h.renew(r0.Str("renewal_token"), k))
	})
	t.Run("token exchange", func(t *testing.T) {
		k := newKey(t)
		check(t, h.postForm("/token", url.Values{
			"grant_type": {GrantTokenExchange}, "client_id": {"demo-app"},
			"subject_token": {h.login("alice", "demo-app", readWrite, k)}, "subject_token_type": {TokenTypeAccessToken},
		}, k))
	})
	t.Run("revoke", func(t *testing.T) {
		check(t, h.postForm(PathRevoke, url.Values{"token": {r0.Str("access_token")}, "client_id": {"demo-app"}}, k))
	})
	t.Run("token refresh_token (renewal)", func(t *testing.T) {
		check(t, h.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}, "refresh_token": {r0.Str("renewal_token")}}, k))
	})
}
