package proxy

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// metrics are the proxy's Prometheus series, on its own registry.
type metrics struct {
	reg       *prometheus.Registry
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	cache     *prometheus.CounterVec
	upstream  *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, audit AuditSink) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		reg: reg,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyless_proxy_requests_total",
			Help: "Requests by decision (allow, deny, error) and the rule that decided a refusal.",
		}, []string{"decision", "rule"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyless_proxy_request_duration_seconds",
			Help:    "Time from request to response, upstream included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"decision"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyless_proxy_token_cache_total",
			Help: "Verified-token cache lookups by result (hit, miss).",
		}, []string{"result"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyless_proxy_upstream_errors_total",
			Help: "Failed upstream round trips by kind.",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.decisions, m.latency, m.cache, m.upstream)
	if audit != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "keyless_proxy_audit_failures_total",
			Help: "Audit lines that could not be written (dropped by a full queue or refused by the destination).",
		}, func() float64 { return float64(audit.Failures()) }))
	}
	return m
}

func (m *metrics) observe(decision, rule string, d time.Duration) {
	m.decisions.WithLabelValues(decision, rule).Inc()
	m.latency.WithLabelValues(decision).Observe(d.Seconds())
}

func (m *metrics) tokenCache(hit bool) {
	if hit {
		m.cache.WithLabelValues("hit").Inc()
	} else {
		m.cache.WithLabelValues("miss").Inc()
	}
}

func (m *metrics) upstreamError(kind string) { m.upstream.WithLabelValues(kind).Inc() }

// AdminHandler serves /metrics (Prometheus), /healthz (the process runs)
// and /readyz ([Proxy.Ready]: the lease keys and the shared stores are
// usable). Serve it on a separate, non-public listener
// (Config.Server.AdminListen).
func (p *Proxy) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if p.auditSink != nil && p.auditSink.Err() != nil {
			http.Error(w, "audit log failing", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := p.Ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}

// Ready reports why the proxy would refuse every lease, or nil: the
// issuer's key set cannot be fetched or holds no usable key (token.jwks_url;
// without keys every request gets 503), or the revocation store does not
// answer. `keyless proxy --check` and `keyless doctor` ask the same
// question about the keys.
func (p *Proxy) Ready(ctx context.Context) error {
	if err := p.KeysReady(ctx); err != nil {
		return err
	}
	if _, err := p.revocations.AnyRevoked(ctx, store.Revocation{Kind: store.KindLease, Value: "readyz"}); err != nil {
		// Says why (the admin listener is not public): a store that does
		// not answer, or a revocation feed cut off too long.
		return fmt.Errorf("revocation store unavailable: %w", err)
	}
	return nil
}

// KeysReady reports whether the lease keys (token.jwks_url) are usable;
// nil when they are local.
func (p *Proxy) KeysReady(ctx context.Context) error {
	if p.keys == nil {
		return nil
	}
	if err := p.keys.Ready(ctx); err != nil {
		return fmt.Errorf("lease keys unavailable (token.jwks_url): %w", err)
	}
	return nil
}
