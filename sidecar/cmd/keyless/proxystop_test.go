package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/proxy"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// anonProxy is a proxy config with one anonymous route to upstream.
func anonProxy(upstream string) proxy.Config {
	return proxy.Config{
		PublicURL: "https://api.example.test",
		Upstreams: map[string]proxy.Upstream{"up": {URL: upstream}},
		Routes:    []proxy.Route{{Name: "pub", Methods: []string{"GET"}, Path: "/pub/**", Upstream: "up", Anonymous: true}},
		Server:    proxy.ServerConfig{Listen: "127.0.0.1:0", AdminListen: "-"},
	}
}

func refuseAll() proxy.Options {
	return proxy.Options{Tokens: refuseTokens{}}
}

type refuseTokens struct{}

func (refuseTokens) Verify(context.Context, string) (*token.Claims, error) {
	return nil, token.ErrInvalidToken
}

// TestProxyStalledStderr: an audit reader that stops reading (a stalled
// pipe) never blocks requests: each is answered, and once the audit queue
// is full the proxy refuses (503, audit.on_failure refuse) instead of
// forwarding unaudited. The old synchronous write blocked every request
// once the pipe buffer was full.
func TestProxyStalledStderr(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	out, err := openAuditOutSize(pw, "", 16)
	if err != nil {
		t.Fatal(err)
	}
	opts := refuseAll()
	opts.Logger, opts.Audit = slog.New(slog.NewJSONHandler(out, nil)), out
	p, err := proxy.New(anonProxy(up.URL), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	// Never read; closed first on the way out, which unblocks a writer.
	defer pr.Close()
	client := &http.Client{Timeout: 5 * time.Second}
	last := 0
	// A pipe holds 64 KiB, about 250 lines; 600 requests are well past it
	// and the 16-line queue, and each must be answered.
	for i := 0; i < 600; i++ {
		req, _ := http.NewRequest("GET", srv.URL+"/pub/x", nil)
		req.Host = "api.example.test"
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v (blocked on the audit writer)", i, err)
		}
		res.Body.Close()
		if last = res.StatusCode; last != 200 && last != http.StatusServiceUnavailable {
			t.Fatalf("request %d: %d", i, last)
		}
	}
	if last != http.StatusServiceUnavailable || out.Err() == nil || out.Failures() == 0 {
		t.Errorf("stalled audit reader: last status %d, Err %v, Failures %d; want 503 and a failure", last, out.Err(), out.Failures())
	}
}

// TestProxyShutdownAuditsCutRequests: requests still running when the
// shutdown timeout passes are cut, each is audited, and serveProxy
// returns an error with a non-zero exit code.
func TestProxyShutdownAuditsCutRequests(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-r.Context().Done() // a slow upstream
	}))
	defer up.Close()
	defer up.CloseClientConnections()
	path := filepath.Join(t.TempDir(), auditLogFile)
	var stderr syncBuffer
	out, err := openAuditOut(&stderr, path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := anonProxy(up.URL)
	cfg.Server.ShutdownTimeout = 100 * time.Millisecond
	opts := refuseAll()
	opts.Logger, opts.Audit = slog.New(slog.NewJSONHandler(out, nil)), out
	p, err := proxy.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stdout syncBuffer
	done := make(chan error, 1)
	go func() { done <- serveProxy(ctx, p, &stdout, opts.Logger, out.Close) }()
	var addr string
	for i := 0; i < 500 && addr == ""; i++ {
		if _, a, ok := strings.Cut(stdout.String(), " on "); ok {
			addr = strings.TrimSpace(strings.SplitN(a, "\n", 2)[0])
		} else {
			time.Sleep(2 * time.Millisecond)
		}
	}
	if addr == "" {
		t.Fatal("proxy did not start")
	}
	const n = 5
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", "http://"+addr+"/pub/slow", nil)
			req.Host = "api.example.test"
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		}()
	}
	for i := 0; i < 1000 && hits.Load() < n; i++ {
		time.Sleep(2 * time.Millisecond)
	}
	if hits.Load() != n {
		t.Fatalf("upstream hits %d, want %d", hits.Load(), n)
	}
	stop()
	var serr error
	select {
	case serr = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("serveProxy did not return")
	}
	wg.Wait()
	var ee *exitError
	if serr == nil || !errors.As(serr, &ee) || exitCode(serr) == 0 {
		t.Errorf("serveProxy = %v, want an exit error (requests were cut)", serr)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), `"path":"/pub/slow"`); got != n {
		t.Errorf("audit file has %d lines for the %d forwarded requests:\n%s", got, n, b)
	}
}
