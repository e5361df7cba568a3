package authserver

import (
	"context"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// fullDisk wraps the real bbolt database and, once full is set, fails every
// commit the way a full disk does: the transaction runs, then writing it
// fails with ENOSPC and nothing is kept. (A real full filesystem needs a
// mount this test cannot make; the error is the one bbolt returns then.)
type fullDisk struct {
	store.KV
	revs store.Revocations
	full atomic.Bool
}

func errNoSpace() error { return &fs.PathError{Op: "write", Path: "keyless.db", Err: syscall.ENOSPC} }

func (d *fullDisk) Update(ctx context.Context, fn func(store.Tx) error) error {
	return d.KV.Update(ctx, func(tx store.Tx) error {
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
	return d.revs.Revoke(ctx, r, until)
}

func (d *fullDisk) AnyRevoked(ctx context.Context, rs ...store.Revocation) (bool, error) {
	return d.revs.AnyRevoked(ctx, rs...)
}

// wantUnavailable: 503 temporarily_unavailable with Retry-After, the one
// answer to a storage failure at every endpoint.
func wantUnavailable(t *testing.T, r result) {
	t.Helper()
	if r.Status != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503: %.200s", r.Status, r.Raw)
	}
	if ct := r.Header.Get("Content-Type"); ct == "application/json" && r.Str("error") != CodeUnavailable {
		t.Errorf("error = %q, want %s", r.Str("error"), CodeUnavailable)
	}
	if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After = %q, want whole seconds >= 1", r.Header.Get("Retry-After"))
	}
}

// On a full disk every issuer endpoint that must write answers 503
// temporarily_unavailable with Retry-After (the token endpoint answered
// 500 server_error), and nothing is issued.
func TestFullDiskOneAnswer(t *testing.T) {
	var disk *fullDisk
	h := newHarness(t, func(o *Options) {
		disk = &fullDisk{KV: o.DB, revs: o.Revocations}
		o.DB, o.Revocations = disk, disk
	})
	k := newKey(t)
	rt := h.tokens(k).Str("refresh_token")
	approved := h.authorize("demo-app", k)
	if err := h.s.Approve(context.Background(), approved.UserCode, "alice", "test"); err != nil {
		t.Fatal(err)
	}
	pending := h.authorize("demo-app", k)
	cookie, tok, _ := openConsent(t, h, pending.UserCode)
	at := h.tokens(k).Str("access_token")
	h.clk.Add(time.Minute)

	disk.full.Store(true)
	t.Run("device_authorization", func(t *testing.T) {
		wantUnavailable(t, h.post("/device_authorization", url.Values{"client_id": {"demo-app"}}, k))
	})
	t.Run("token device_code", func(t *testing.T) {
		r := h.poll("demo-app", approved.DeviceCode, k)
		wantUnavailable(t, r)
		if r.Str("access_token") != "" {
			t.Error("a token was issued")
		}
	})
	t.Run("token refresh_token", func(t *testing.T) {
		wantUnavailable(t, h.refresh("demo-app", rt, k))
	})
	t.Run("revoke", func(t *testing.T) {
		wantUnavailable(t, h.revoke("demo-app", at, "", k))
	})
	t.Run("device page approve", func(t *testing.T) {
		r := h.pagePost(url.Values{"csrf": {tok}, "user_code": {pending.UserCode}, "username": {"alice"}, "password": {testPassword}, "action": {"approve"}}, cookie)
		wantUnavailable(t, r)
	})
	// The disk has room again: the same requests succeed.
	disk.full.Store(false)
	h.clk.Add(time.Minute)
	if r := h.poll("demo-app", approved.DeviceCode, k); r.Status != 200 {
		t.Errorf("after the disk has room: %d %s", r.Status, r.Raw)
	}
}
