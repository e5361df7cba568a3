package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/auditlog"
)

// waitFor polls cond a bounded number of times (the audit queue writes on
// its own goroutine; there is no clock to advance).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestAuditFailure: with the audit log on a full disk (/dev/full answers
// ENOSPC), the failure is counted in a metric and turns /readyz red; with
// audit.on_failure refuse (the default) requests are answered 503 with
// Retry-After and never forwarded, with continue they are forwarded.
func TestAuditFailure(t *testing.T) {
	for _, mode := range []string{"", AuditContinue} {
		t.Run("on_failure="+mode, func(t *testing.T) {
			full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
			if err != nil {
				t.Skipf("no /dev/full: %v", err)
			}
			defer full.Close()
			q := auditlog.New(full, 0, nil)
			h := newHarness(t, func(h *harness) {
				h.cfg.Audit.OnFailure = mode
				h.opts.Logger = NewAuditLogger(q)
				h.opts.Audit = q
			})
			// The first line fails on the writer's goroutine.
			h.do(h.request("GET", "/public/x"))
			waitFor(t, "the audit failure", func() bool { return q.Err() != nil })
			before := h.echo.hits.Load()
			res := h.do(h.authed("GET", "/v1/orders", read...))
			if mode == AuditContinue {
				if res.StatusCode != 200 {
					t.Errorf("continue: %d, want 200", res.StatusCode)
				}
			} else {
				checkRefusal(t, res, 503, noCheck)
				if res.Header.Get("Retry-After") == "" || h.echo.hits.Load() != before {
					t.Errorf("refuse: Retry-After %q, forwarded %v", res.Header.Get("Retry-After"), h.echo.hits.Load() != before)
				}
			}
			admin := h.proxy.AdminHandler()
			rec := httptest.NewRecorder()
			admin.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("/readyz = %d, want 503", rec.Code)
			}
			rec = httptest.NewRecorder()
			admin.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			b, _ := io.ReadAll(rec.Body)
			if !strings.Contains(string(b), "keyless_proxy_audit_failures_total") || strings.Contains(string(b), "keyless_proxy_audit_failures_total 0\n") {
				t.Errorf("metrics lack a non-zero keyless_proxy_audit_failures_total")
			}
		})
	}
}
