package proxy

import (
	"fmt"
	"net/http/httputil"
	"net/url"
)

// Baseline is a bare httputil.ReverseProxy to cfg's upstream name, with
// the transport and buffer pool a keyless route to that upstream uses and
// none of the checks. Benchmarks compare against it, so that the ratio
// measures the checks alone, not connection pooling or buffer reuse.
func Baseline(cfg Config, name string) (*httputil.ReverseProxy, error) {
	cfg = cfg.WithDefaults()
	u, ok := cfg.Upstreams[name]
	if !ok {
		return nil, fmt.Errorf("proxy: no upstream %q", name)
	}
	target, err := url.Parse(u.URL)
	if err != nil {
		return nil, err
	}
	t, err := newTransport(u)
	if err != nil {
		return nil, err
	}
	return &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		Transport:  t,
		BufferPool: bufferPool{},
	}, nil
}
