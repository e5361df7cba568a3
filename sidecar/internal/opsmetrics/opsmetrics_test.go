package opsmetrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestEndpoint(t *testing.T) {
	for _, tc := range []struct{ base, path, want string }{
		{"", "/token", "token"},
		{"", "/device_authorization", "device_authorization"},
		{"", "/device", "device"},
		{"", "/revoke", "revoke"},
		{"", "/introspect", "introspect"},
		{"", "/jwks.json", "jwks"},
		{"", "/.well-known/oauth-authorization-server", "metadata"},
		{"/t1", "/t1/.well-known/openid-configuration", "metadata"},
		{"/t1", "/t1/token", "token"},
		{"/t1", "/token", "other"},
		{"", "/v1/lease", "lease"},
		{"", "/v1/lease/renew", "lease_renew"},
		{"", "/v1/lease/revoke", "lease_revoke"},
		{"", "/keyless/keyless.wasm", "assets"},
		{"", "/token/extra", "other"},
		{"", "/", "other"},
	} {
		if got := Endpoint(tc.base, tc.path); got != tc.want {
			t.Errorf("Endpoint(%q, %q) = %q, want %q", tc.base, tc.path, got, tc.want)
		}
	}
}

// FuzzEndpoint: whatever the path, the label is one of the closed set.
func FuzzEndpoint(f *testing.F) {
	f.Add("", "/token")
	f.Add("/t", "/t/device")
	known := map[string]bool{}
	for _, s := range strings.Fields("token device_authorization device revoke introspect jwks metadata lease lease_renew lease_revoke assets other") {
		known[s] = true
	}
	f.Fuzz(func(t *testing.T, base, path string) {
		if got := Endpoint(base, path); !known[got] {
			t.Fatalf("Endpoint(%q, %q) = %q: not in the closed set", base, path, got)
		}
	})
}

func TestInstrumentCountsByEndpointAndCode(t *testing.T) {
	m := New()
	h := m.Instrument("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			w.WriteHeader(http.StatusBadRequest)
			w.WriteHeader(http.StatusOK) // superfluous: the first code counts
			return
		}
		w.Write([]byte("hi")) // implicit 200
	}))
	for _, p := range []string{"/token", "/token", "/jwks.json", "/nope"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	for _, tc := range []struct {
		ep, code string
		want     float64
	}{{"token", "400", 2}, {"jwks", "200", 1}, {"other", "200", 1}, {"token", "200", 0}} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(tc.ep, tc.code)); got != tc.want {
			t.Errorf("requests{%s,%s} = %v, want %v", tc.ep, tc.code, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.latency); n != 3 {
		t.Errorf("latency series = %d, want 3 (token, jwks, other)", n)
	}
}

func TestAuditHandlerCountsEventsAndPassesLinesOn(t *testing.T) {
	m := New()
	var buf bytes.Buffer
	log := slog.New(m.AuditHandler(slog.NewJSONHandler(&buf, nil)))
	log.Info("token.issue", "event", "token.issue", "sub", "alice")
	log.Info("token.issue", "event", "token.issue")
	log.Warn("lease denied", "event", "lease.deny")
	log.With("event", "device.approve").Info("approved")
	log.Info("no event here")
	log.Info("odd", "event", "Robert'); DROP TABLE")
	log.WithGroup("g").Info("grouped", "event", "keys.rotate")
	for _, tc := range []struct {
		ev   string
		want float64
	}{{"token.issue", 2}, {"lease.deny", 1}, {"device.approve", 1}, {"other", 1}, {"keys.rotate", 1}} {
		if got := testutil.ToFloat64(m.events.WithLabelValues(tc.ev)); got != tc.want {
			t.Errorf("events{%s} = %v, want %v", tc.ev, got, tc.want)
		}
	}
	if n := strings.Count(buf.String(), "\n"); n != 7 {
		t.Errorf("%d lines passed on, want 7:\n%s", n, buf.String())
	}
}

func TestHandler(t *testing.T) {
	m := New()
	var storeErr error
	h := m.Handler(Check{Name: "store", Fn: func(context.Context) error { return storeErr }})
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}
	m.CountEvent("lease.issue")
	for _, tc := range []struct {
		name     string
		setup    func()
		path     string
		code     int
		contains string
	}{
		{"healthz", func() {}, "/healthz", 200, "ok"},
		{"ready", func() {}, "/readyz", 200, "ready"},
		{"metrics", func() {}, "/metrics", 200, `keyless_audit_events_total{event="lease.issue"} 1`},
		{"store down", func() { storeErr = errors.New("dial tcp 10.0.0.1:6379: secret-password") }, "/readyz", 503, "not ready: store unavailable"},
		{"healthz while store down", func() {}, "/healthz", 200, "ok"},
		{"draining", func() { storeErr = nil; m.Drain() }, "/readyz", 503, "shutting down"},
	} {
		tc.setup()
		code, body := get(tc.path)
		if code != tc.code || !strings.Contains(body, tc.contains) {
			t.Errorf("%s: GET %s = %d %q, want %d containing %q", tc.name, tc.path, code, body, tc.code, tc.contains)
		}
		if strings.Contains(body, "secret-password") {
			t.Errorf("%s: the check's error text leaked: %q", tc.name, body)
		}
	}
}
