package proxy

import (
	"io"
	"net"
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

// TestClientConnCap: server.max_conns bounds the client connections open
// at once: with the cap held by idle connections (slowloris), a new client
// waits in the backlog instead of costing another goroutine and buffers;
// once one closes, it is served.
func TestClientConnCap(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.cfg.Server.MaxConns = 2 })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := h.proxy.NewServer(h.proxy)
	go srv.Serve(h.proxy.LimitListener(ln))
	defer srv.Close()
	addr := ln.Addr().String()
	var idle []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /public/x HTTP/1.1\r\nHost: api.example.test\r\n") // never finished
		idle = append(idle, c)
	}
	get := func(timeout time.Duration) (*http.Response, error) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/public/x", nil)
		req.Host = "api.example.test"
		c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		return c.Do(req)
	}
	if res, err := get(300 * time.Millisecond); err == nil {
		res.Body.Close()
		t.Fatalf("a third connection was served past max_conns 2: %d", res.StatusCode)
	}
	idle[0].Close()
	res, err := get(5 * time.Second)
	if err != nil {
		t.Fatalf("after an idle connection closed: %v", err)
	}
	res.Body.Close()
	idle[1].Close()
}

// TestUpstreamConnCap: upstreams.max_conns bounds the connections (and so
// the requests at once) the proxy opens to an upstream.
func TestUpstreamConnCap(t *testing.T) {
	var active, peak atomic.Int64
	arrived := make(chan struct{}, 3)
	h := newHarness(t, func(h *harness) {
		up := newServer(h.t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := active.Add(1)
			defer active.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			arrived <- struct{}{}
			// Hold until all three are here (no cap) or briefly (capped:
			// they can only come one by one).
			select {
			case <-r.Context().Done():
			case <-time.After(150 * time.Millisecond):
			}
		}))
		h.cfg.Upstreams["narrow"] = Upstream{URL: up.URL, MaxConns: 1}
		h.cfg.Routes = append([]Route{{Name: "narrow", Path: "/narrow", Upstream: "narrow", Anonymous: true}}, h.cfg.Routes...)
	})
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res, err := h.srv.Client().Do(h.request("GET", "/narrow")); err == nil {
				res.Body.Close()
			}
		}()
	}
	wg.Wait()
	if len(arrived) != 3 || peak.Load() != 1 {
		t.Errorf("upstream saw %d requests, %d at once; want 3, one at a time", len(arrived), peak.Load())
	}
}
