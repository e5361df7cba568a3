// Package opsmetrics is the operations surface of `keyless serve` and
// `keyless dev`: /healthz, /readyz and Prometheus /metrics on the admin
// listener, fed by two taps that need no change to the services they
// watch:
//
//   - [Metrics.Instrument] wraps the public handler and counts requests and
//     their latency by endpoint (token, device_authorization, lease, ...)
//     and status code;
//   - [Metrics.AuditHandler] wraps the audit logger's slog.Handler and
//     counts audit lines by their "event" attribute (token.issue,
//     device.approve, lease.deny, token.revoke, ...), so the counters and
//     docs/audit.md can never disagree about what happened.
//
// The series names are listed in docs/operations.md.
package opsmetrics

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the issuer's series on its own registry (never the global
// one, so tests and several servers in one process do not collide).
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	events   *prometheus.CounterVec
	// draining is set when shutdown starts: /readyz then answers 503 so a
	// load balancer stops sending new requests before the listener closes.
	draining atomic.Bool
}

// New makes the series and registers them, with the Go runtime and process
// collectors, on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyless_http_requests_total",
			Help: "Requests to the issuer by endpoint (token, device_authorization, device, lease, lease_renew, lease_revoke, revoke, introspect, jwks, metadata, assets, other) and HTTP status code.",
		}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyless_http_request_duration_seconds",
			Help:    "Time from request to response at the issuer, by endpoint.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyless_audit_events_total",
			Help: "Audit lines by event (token.issue, token.refresh, token.revoke, device.authorize, device.approve, device.deny, lease.issue, lease.renew, lease.deny, lease.revoke, lease.renewal_reuse, keys.create, keys.rotate, tls.reload, tls.reload_failed; anything else is counted as other).",
		}, []string{"event"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.events,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the series live, for tests and for adding more.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Drain makes /readyz answer 503 from now on (shutdown has started).
func (m *Metrics) Drain() { m.draining.Store(true) }

// Endpoint names the route of a public request path for the endpoint
// label. It is a closed set so the label's cardinality cannot grow with
// what clients send. base is the issuer URL's path ("" or "/tenant").
func Endpoint(base, path string) string {
	if strings.HasPrefix(path, "/.well-known/") {
		return "metadata"
	}
	if strings.HasPrefix(path, "/keyless/") {
		return "assets"
	}
	switch path {
	case "/v1/lease":
		return "lease"
	case "/v1/lease/renew":
		return "lease_renew"
	case "/v1/lease/revoke":
		return "lease_revoke"
	}
	rest, ok := strings.CutPrefix(path, base)
	if !ok {
		return "other"
	}
	switch rest {
	case "/token":
		return "token"
	case "/device_authorization":
		return "device_authorization"
	case "/device":
		return "device"
	case "/revoke":
		return "revoke"
	case "/introspect":
		return "introspect"
	case "/jwks.json":
		return "jwks"
	case "/.well-known/openid-configuration":
		return "metadata"
	}
	return "other"
}

// Instrument counts every request h serves and times it. base is the
// issuer URL's path, as for [Endpoint].
func (m *Metrics) Instrument(base string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		ep := Endpoint(base, r.URL.Path)
		defer func() {
			m.requests.WithLabelValues(ep, strconv.Itoa(sw.code)).Inc()
			m.latency.WithLabelValues(ep).Observe(time.Since(start).Seconds())
		}()
		h.ServeHTTP(sw, r)
	})
}

// statusWriter remembers the status code written. Unwrap lets
// http.ResponseController reach Flush and deadlines of the real writer.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.code, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// eventName is what an audit event may be called to get its own label
// value; see docs/audit.md for the names in use.
var eventName = regexp.MustCompile(`^(token|device|lease|keys|tls)\.[a-z_]{1,32}$`)

// CountEvent adds one to the counter of an audit event, or of "other" for
// a name outside the known families (the label set stays bounded).
func (m *Metrics) CountEvent(event string) {
	if !eventName.MatchString(event) {
		event = "other"
	}
	m.events.WithLabelValues(event).Inc()
}

// AuditHandler wraps next so that every audit line with an "event"
// attribute is also counted. Lines are passed on unchanged.
func (m *Metrics) AuditHandler(next slog.Handler) slog.Handler {
	return &auditTap{m: m, next: next}
}

type auditTap struct {
	m     *Metrics
	next  slog.Handler
	event string // an "event" given through WithAttrs
}

func (t *auditTap) Enabled(ctx context.Context, l slog.Level) bool { return t.next.Enabled(ctx, l) }

func (t *auditTap) Handle(ctx context.Context, r slog.Record) error {
	ev := t.event
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "event" {
			ev = a.Value.String()
			return false
		}
		return true
	})
	if ev != "" {
		t.m.CountEvent(ev)
	}
	return t.next.Handle(ctx, r)
}

func (t *auditTap) WithAttrs(as []slog.Attr) slog.Handler {
	c := *t
	for _, a := range as {
		if a.Key == "event" {
			c.event = a.Value.String()
		}
	}
	c.next = t.next.WithAttrs(as)
	return &c
}

func (t *auditTap) WithGroup(name string) slog.Handler {
	c := *t
	c.next = t.next.WithGroup(name)
	return &c
}

// Check is one readiness condition: nil when ready, else why not.
type Check struct {
	Name string
	Fn   func(context.Context) error
}

// Handler serves GET /healthz (the process answers), GET /readyz (every
// check passes within two seconds and shutdown has not started; 503
// naming the failed check otherwise, never its error text, which may
// carry addresses or credentials of the store) and GET /metrics.
func (m *Metrics) Handler(checks ...Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if m.draining.Load() {
			http.Error(w, "not ready: shutting down", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		for _, c := range checks {
			if err := c.Fn(ctx); err != nil {
				http.Error(w, "not ready: "+c.Name+" unavailable", http.StatusServiceUnavailable)
				return
			}
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}
