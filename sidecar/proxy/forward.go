package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/proxy/check"
)

type exchangeKey struct{}

// reverseProxy builds a route's ReverseProxy. Rewrite (never Director) runs
// after the hop-by-hop headers, including those the client names in
// Connection, have been removed, so the identity headers it injects cannot
// be deleted by the client (docs/security.md#a1).
func (p *Proxy) reverseProxy(rt *route, transport http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { p.rewrite(rt, pr) },
		Transport:      transport,
		ModifyResponse: func(res *http.Response) error { return p.modifyResponse(rt, res) },
		ErrorHandler:   p.upstreamFailed,
		BufferPool:     bufferPool{},
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
}

// forward hands the request to the route's ReverseProxy. A WebSocket
// upgrade gets a context that is canceled when its lease expires or is
// revoked, which closes the tunnel.
func (p *Proxy) forward(x *exchange) *Error {
	if x.route == nil || x.route.proxy == nil {
		return &Error{Code: CodeNotFound, Msg: "no such route", Rule: "route"}
	}
	// The upstream's in-flight cap: 503 at once past it, never a queue.
	select {
	case x.route.slots <- struct{}{}:
		defer func() { <-x.route.slots }()
	default:
		return &Error{Code: CodeUnavailable, Msg: "upstream at capacity", Rule: "upstream.in_flight", RetryAfter: time.Second}
	}
	ctx, cancel := context.WithCancel(context.WithValue(x.r.Context(), exchangeKey{}, x))
	defer cancel()
	x.cancel = cancel
	if x.upgrade {
		go p.watchLease(ctx, cancel, x.claims)
	}
	// CORS and DPoP-Nonce go on the final response (modifyResponse): the
	// ReverseProxy clears the header map after relaying a 1xx.
	x.route.proxy.ServeHTTP(x.w, x.r.WithContext(ctx))
	return nil
}

// rewrite builds the outbound request: the canonical path (minus the
// route's prefix) on the upstream URL, the query as sent (minus a WebSocket
// ticket), inbound headers stripped, then the proxy's own forwarding,
// credential and identity headers set.
func (p *Proxy) rewrite(rt *route, pr *httputil.ProxyRequest) {
	x := pr.In.Context().Value(exchangeKey{}).(*exchange)
	out := pr.Out
	path := check.ForwardPath(rt.StripPrefix, x.path)
	out.URL.Path, out.URL.RawPath = unescapePath(path), path
	if x.ticket {
		out.URL.RawQuery = dropQueryParam(out.URL.RawQuery, p.cfg.WebSocket.TicketParam)
	}
	pr.SetURL(rt.upstream)

	h := out.Header
	p.strip.deleteMatching(h, nil)
	if !rt.AllowCookies {
		h.Del("Cookie")
	}
	// A byte range of a redacted document is a slice of the unredacted
	// one: redacted routes always fetch the whole representation
	// (RFC 9110 section 14.2 lets a server ignore Range).
	if len(rt.Redact) > 0 {
		h.Del("Range")
		h.Del("If-Range")
	}
	// The client never chooses the upstream credential, in any spelling.
	rt.credStrip.deleteMatching(h, nil)
	// Request trailers are dropped, never merged (RFC 9110 section 6.5.1).
	out.Trailer = nil
	if x.upgrade {
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", "websocket")
	}
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		h.Set("X-Forwarded-For", ip)
	}
	h.Set("X-Forwarded-Host", p.publicHost)
	h.Set("X-Forwarded-Proto", p.publicProto)
	if c := x.claims; c != nil {
		for _, kv := range check.Identity(p.cfg.Headers, c) {
			h.Set(kv[0], kv[1])
		}
	}
}

// dropQueryParam removes every name=value pair of name from a raw query,
// leaving the rest byte for byte.
func dropQueryParam(raw, name string) string {
	if raw == "" {
		return raw
	}
	parts := strings.Split(raw, "&")
	out := parts[:0]
	for _, kv := range parts {
		k, _, _ := strings.Cut(kv, "=")
		if k == name {
			continue
		}
		out = append(out, kv)
	}
	return strings.Join(out, "&")
}

// errRedaction marks a response that had to be redacted but could not be.
var errRedaction = errors.New("proxy: response could not be redacted")

// modifyResponse strips headers that leak the upstream, sets the proxy's
// own (CORS, DPoP-Nonce) on the final response, and redacts JSON fields per
// route. A response that must be redacted but cannot be parsed, or is a
// 206 slice, is refused (502), never passed through.
func (p *Proxy) modifyResponse(rt *route, res *http.Response) error {
	p.stripResp.deleteMatching(res.Header, nil)
	if x, _ := res.Request.Context().Value(exchangeKey{}).(*exchange); x != nil {
		p.finalHeaders(x, res.Header)
	}
	if len(rt.Redact) > 0 && res.StatusCode == http.StatusPartialContent {
		return errRedaction
	}
	if d := rt.UpstreamIdleTimeout; d > 0 && res.StatusCode != http.StatusSwitchingProtocols {
		if x, _ := res.Request.Context().Value(exchangeKey{}).(*exchange); x != nil && x.cancel != nil {
			res.Body = newIdleBody(res.Body, d, x.cancel)
		}
	}
	if len(rt.Redact) == 0 || res.StatusCode == http.StatusSwitchingProtocols ||
		res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified ||
		res.Request != nil && res.Request.Method == http.MethodHead {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, rt.MaxResponseBytes+1))
	res.Body.Close()
	if err != nil {
		return err
	}
	if len(body) == 0 {
		res.Body = io.NopCloser(bytes.NewReader(nil))
		return nil
	}
	if int64(len(body)) > rt.MaxResponseBytes {
		return errRedaction
	}
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if res.Header.Get("Content-Encoding") != "" || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return errRedaction
	}
	out, err := Redact(body, rt.Redact)
	if err != nil {
		return errRedaction
	}
	res.Body = io.NopCloser(bytes.NewReader(out))
	res.ContentLength = int64(len(out))
	res.Header.Set("Content-Length", strconv.Itoa(len(out)))
	res.Header.Del("Etag")
	res.Header.Del("Content-Md5")
	return nil
}

// finalHeaders sets the proxy's headers on a forwarded final response: CORS
// for the lease's app, and in nonce mode the current nonce; a nonce the
// proof did not carry is new, and a response carrying it must not be
// cached (RFC 9449 section 8.2).
func (p *Proxy) finalHeaders(x *exchange, h http.Header) {
	p.corsHeaders(x, h)
	if p.nonces != nil {
		n := p.nonces.Current()
		h.Set("DPoP-Nonce", n)
		if x.proof == nil || x.proof.Nonce != n {
			h.Set("Cache-Control", "no-store")
		}
	}
}

// upstreamFailed is the ReverseProxy's ErrorHandler: 502 when the upstream
// is down, 504 when it is slow, 413 for an over-long streamed body.
func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	x, _ := r.Context().Value(exchangeKey{}).(*exchange)
	if x == nil {
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	e := upstreamError(err)
	x.err = e
	p.metrics.upstreamError(e.RuleName())
	p.render(x, e)
}

// idleBody cuts an upstream response body that stays silent for d: the
// timer, reset by every read, cancels the upstream request, which ends the
// pending read with an error and the client's response early.
type idleBody struct {
	io.ReadCloser
	d     time.Duration
	timer *time.Timer
}

func newIdleBody(rc io.ReadCloser, d time.Duration, cancel context.CancelFunc) *idleBody {
	return &idleBody{ReadCloser: rc, d: d, timer: time.AfterFunc(d, cancel)}
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.timer.Reset(b.d)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	return b.ReadCloser.Close()
}

// bufferPool recycles the ReverseProxy's copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
