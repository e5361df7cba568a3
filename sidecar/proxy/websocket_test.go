package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

func (h *harness) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(h.srv.URL, "http") + path
}

// dialHeaders connects a non-browser client that sends DPoP credentials on
// the upgrade request.
func (h *harness) dialHeaders(tok string) (*websocket.Conn, *http.Response, error) {
	hd := http.Header{}
	hd.Set("Authorization", "DPoP "+tok)
	hd.Set("DPoP", h.proof("GET", "/ws", tok))
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	return d.Dial(h.wsURL("/ws"), hd)
}

// ticket gets a single-use ticket for path the browser way.
func (h *harness) ticket(tok, path string) string {
	h.t.Helper()
	r := h.request("POST", DefaultTicketPath)
	r.Header.Set("Authorization", "DPoP "+tok)
	r.Header.Set("DPoP", h.proof("POST", DefaultTicketPath, tok))
	r.Header.Set("Origin", appOrigin)
	setBody(r, "application/json", `{"path":"`+path+`"}`)
	res := h.do(r)
	b, _ := readAll(res)
	if res.StatusCode != 200 {
		h.t.Fatalf("ticket: %d %s", res.StatusCode, b)
	}
	var tr ticketResponse
	if err := json.Unmarshal(b, &tr); err != nil || tr.Ticket == "" || tr.ExpiresIn != 30 {
		h.t.Fatalf("ticket response %s", b)
	}
	return tr.Ticket
}

func (h *harness) dialTicket(ticket string) (*websocket.Conn, *http.Response, error) {
	hd := http.Header{}
	hd.Set("Origin", appOrigin)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	return d.Dial(h.wsURL("/ws?a=1&"+DefaultTicketParam+"="+ticket), hd)
}

func echoOnce(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// closedWithin waits for the server to close c, bounded by d.
func closedWithin(t *testing.T, c *websocket.Conn, d time.Duration) {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(d + time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("socket still open after %v", time.Since(start))
			}
			break
		}
	}
	if el := time.Since(start); el > d {
		t.Errorf("socket closed after %v, want within %v", el, d)
	}
}

func TestWebSocketHeaders(t *testing.T) {
	h := newHarness(t)
	c, res, err := h.dialHeaders(h.lease(nil, "orders:read"))
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, res)
	}
	defer c.Close()
	if got := echoOnce(t, c, "hello"); got != "alice:hello" {
		t.Errorf("echo = %q, want the injected identity", got)
	}
	got := h.echo.last(t)
	if got.Header.Get("Authorization") != "" || got.Header.Get("Dpop") != "" || got.Header.Get("Upgrade") != "websocket" {
		t.Errorf("backend upgrade headers: %v", got.Header)
	}
	// Wrong scope: refused before any 101.
	_, res, err = h.dialHeaders(h.lease(nil, "users:read"))
	if err == nil || res == nil || res.StatusCode != 403 {
		t.Errorf("wrong scope: err %v, res %v", err, res)
	}
}

func TestWebSocketTicket(t *testing.T) {
	h := newHarness(t)
	tok := h.lease(nil, "orders:read")
	tk := h.ticket(tok, "/ws")
	c, res, err := h.dialTicket(tk)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, res)
	}
	if got := echoOnce(t, c, "hi"); got != "alice:hi" {
		t.Errorf("echo = %q", got)
	}
	c.Close()
	if got := h.echo.last(t).RequestURI; got != "/ws?a=1" {
		t.Errorf("backend saw %q, want the ticket removed", got)
	}
	// Single use.
	hits := h.echo.hits.Load()
	_, res, err = h.dialTicket(tk)
	if err == nil || res == nil || res.StatusCode != 401 {
		t.Fatalf("reused ticket: err %v res %v", err, res)
	}
	if h.echo.hits.Load() != hits {
		t.Error("reused ticket forwarded")
	}
	// Bound to the path: a ticket for /ws does not open /upgrade-refuse.
	tk = h.ticket(tok, "/ws")
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	_, res, err = d.Dial(h.wsURL("/upgrade-refuse?"+DefaultTicketParam+"="+tk), http.Header{"Origin": {appOrigin}})
	if err == nil || res == nil || res.StatusCode != 401 {
		t.Errorf("ticket on another path: err %v res %v", err, res)
	}
	// Expires after 30 s.
	tk = h.ticket(tok, "/ws")
	h.clock.Advance(31 * time.Second)
	_, res, err = h.dialTicket(tk)
	if err == nil || res == nil || res.StatusCode != 401 {
		t.Errorf("expired ticket: err %v res %v", err, res)
	}
	// A foreign Origin cannot use a ticket (CSWSH).
	tk = h.ticket(h.lease(nil, "orders:read"), "/ws")
	_, res, err = d.Dial(h.wsURL("/ws?"+DefaultTicketParam+"="+tk), http.Header{"Origin": {"https://evil.example"}})
	if err == nil || res == nil || res.StatusCode != 403 {
		t.Errorf("foreign origin: err %v res %v", err, res)
	}
	// No ticket for a path that is not a WebSocket route, or without the scope.
	for _, tc := range []struct {
		scope, path string
		status      int
	}{{"orders:read", "/v1/orders", 404}, {"users:read", "/ws", 403}, {"orders:read", "/../ws", 400}} {
		tok := h.lease(nil, tc.scope)
		r := h.request("POST", DefaultTicketPath)
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", h.proof("POST", DefaultTicketPath, tok))
		setBody(r, "application/json", `{"path":"`+tc.path+`"}`)
		if res := h.do(r); res.StatusCode != tc.status {
			t.Errorf("ticket for %s with %s: %d, want %d", tc.path, tc.scope, res.StatusCode, tc.status)
		}
	}
}

func TestWebSocketClosedOnRevocation(t *testing.T) {
	h := newHarness(t)
	tok := h.lease(nil, "orders:read")
	c, _, err := h.dialHeaders(tok)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOnce(t, c, "x")
	cl, err := h.opts.Tokens.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	h.revoked.Revoke(t.Context(), store.Revocation{Kind: store.KindLease, Value: cl.LeaseID}, cl.Expiry)
	closedWithin(t, c, time.Second)
}

func TestWebSocketClosedOnExpiry(t *testing.T) {
	h := newHarness(t)
	tk := h.ticket(h.lease(func(s *token.Spec) { s.TTL = 2 * time.Minute }, "orders:read"), "/ws")
	c, _, err := h.dialTicket(tk)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOnce(t, c, "x")
	h.clock.Advance(2 * time.Minute)
	closedWithin(t, c, time.Second)
}

// TestUpgradeRefusedByBackend: a backend answering an upgrade with 426
// leaves the connection in HTTP mode; the next bytes are a new request that
// needs credentials (websocket-smuggle).
func TestUpgradeRefusedByBackend(t *testing.T) {
	h := newHarness(t)
	tok := h.lease(nil, "orders:read")
	conn, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /upgrade-refuse HTTP/1.1\r\nHost: api.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: DPoP "+tok+
		"\r\nDPoP: "+h.proof("GET", "/upgrade-refuse", tok)+"\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("status %d", res.StatusCode)
	}
	hits := h.echo.hits.Load()
	io.WriteString(conn, "GET /admin/users HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
	res, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 401 || h.echo.hits.Load() != hits {
		t.Errorf("smuggled request: %d, hits %d -> %d", res.StatusCode, hits, h.echo.hits.Load())
	}
}
