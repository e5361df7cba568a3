package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestUpstreamInFlightCap: past an upstream's max_in_flight the proxy
// answers 503 with Retry-After at once and forwards nothing, instead of
// holding another goroutine on a stalled upstream; a freed slot is used
// again.
func TestUpstreamInFlightCap(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int64
	h := newHarness(t, func(h *harness) {
		up := newServer(h.t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		h.cfg.Upstreams["stall"] = Upstream{URL: up.URL, MaxInFlight: 2}
		h.cfg.Routes = append([]Route{{Name: "stall", Path: "/stall/**", Upstream: "stall", Anonymous: true}}, h.cfg.Routes...)
	})
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := h.srv.Client().Do(h.request("GET", "/stall/x"))
			if err == nil {
				res.Body.Close()
			}
		}()
	}
	waitFor(t, "two requests at the upstream", func() bool { return hits.Load() == 2 })
	res := h.do(h.request("GET", "/stall/x"))
	checkRefusal(t, res, 503, noCheck)
	if res.Header.Get("Retry-After") == "" || hits.Load() != 2 {
		t.Errorf("past the cap: Retry-After %q, upstream hits %d (want 2)", res.Header.Get("Retry-After"), hits.Load())
	}
	close(release)
	wg.Wait()
	if res := h.do(h.request("GET", "/stall/x")); res.StatusCode != 200 {
		t.Errorf("after the slots were freed: %d", res.StatusCode)
	}
}

// TestUpstreamIdleTimeout: an upstream that sends its headers and part of
// its body, then stalls, is cut after the route's upstream_idle_timeout:
// the client's response ends early (not held until the client gives up)
// and the upstream's request is canceled.
func TestUpstreamIdleTimeout(t *testing.T) {
	canceled := make(chan struct{})
	h := newHarness(t, func(h *harness) {
		up := newServer(h.t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			io.WriteString(w, strings.Repeat("a", 100))
			w.(http.Flusher).Flush()
			<-r.Context().Done() // stalls mid-body
			close(canceled)
		}))
		h.cfg.Upstreams["midbody"] = Upstream{URL: up.URL}
		h.cfg.Routes = append([]Route{{Name: "midbody", Path: "/midbody", Upstream: "midbody", Anonymous: true,
			UpstreamIdleTimeout: 100 * time.Millisecond}}, h.cfg.Routes...)
	})
	client := *h.srv.Client()
	client.Timeout = 5 * time.Second
	// The cut reaches the client as a connection closed before the
	// response completed (its headers may not have been flushed yet).
	res, err := client.Do(h.request("GET", "/midbody"))
	if err == nil {
		var b []byte
		b, err = io.ReadAll(res.Body)
		res.Body.Close()
		if err == nil {
			t.Fatalf("stalled body: read %d bytes and no error", len(b))
		}
	}
	if strings.Contains(err.Error(), "Client.Timeout") {
		t.Errorf("stalled body held until the client gave up: %v", err)
	}
	select {
	case <-canceled:
	case <-time.After(5 * time.Second):
		t.Error("the upstream request was never canceled")
	}
}
