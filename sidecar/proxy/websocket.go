package proxy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/token"
)

// checkUpgrade marks a WebSocket upgrade on a WebSocket route. Any other
// Upgrade (h2c above all, docs/security.md#a14) is not an upgrade: its
// headers are stripped in rewrite and the request is forwarded as a plain
// one, so the backend never switches protocols.
func (p *Proxy) checkUpgrade(x *exchange) {
	r := x.r
	x.upgrade = x.route != nil && x.route.WebSocket && r.Method == http.MethodGet && r.ProtoMajor == 1 &&
		strings.EqualFold(strings.TrimSpace(r.Header.Get("Upgrade")), "websocket") &&
		headerHasToken(r.Header, "Connection", "upgrade")
}

func headerHasToken(h http.Header, name, tok string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), tok) {
				return true
			}
		}
	}
	return false
}

// Ticket is a browser's single-use WebSocket ticket
// (docs/security.md#d10): browsers cannot set Authorization or DPoP on an upgrade, so they POST
// with DPoP credentials for a ticket bound to one path and their key, then
// connect with it.
type Ticket struct {
	Path   string // canonical path of the WebSocket route
	JKT    string // thumbprint of the key that proved possession
	Claims token.Claims
}

// TicketStore holds tickets. Take must atomically remove and return a
// ticket, so each is used at most once.
type TicketStore interface {
	Put(ctx context.Context, id string, t Ticket, until time.Time) error
	Take(ctx context.Context, id string) (Ticket, bool, error)
}

// MemTickets is an in-memory [TicketStore].
type MemTickets struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	m  map[string]memTicket
}

type memTicket struct {
	t     Ticket
	until time.Time
}

var _ TicketStore = (*MemTickets)(nil)

// DefaultMaxTickets bounds MemTickets.
const DefaultMaxTickets = 100000

func (s *MemTickets) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Put implements TicketStore.
func (s *MemTickets) Put(_ context.Context, id string, t Ticket, until time.Time) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]memTicket)
	}
	if len(s.m) >= DefaultMaxTickets {
		for k, v := range s.m {
			if !now.Before(v.until) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= DefaultMaxTickets {
			return errTicketsFull
		}
	}
	s.m[id] = memTicket{t: t, until: until}
	return nil
}

// Take implements TicketStore.
func (s *MemTickets) Take(_ context.Context, id string) (Ticket, bool, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	delete(s.m, id)
	if !ok || !now.Before(v.until) {
		return Ticket{}, false, nil
	}
	return v.t, true, nil
}

var errTicketsFull = errors.New("proxy: ticket store full")

type ticketRequest struct {
	Path string `json:"path"`
}

type ticketResponse struct {
	Ticket    string `json:"ticket"`
	ExpiresIn int    `json:"expires_in"`
}

// issueTicket answers POST {ticket_path} with body {"path": "/ws"}: the
// caller proves possession as for any request (the proof's htu is the
// ticket path), and must hold the scopes of the WebSocket route at path.
func (p *Proxy) issueTicket(x *exchange) *Error {
	if err := p.checkScheme(x); err != nil {
		return err
	}
	if err := p.checkToken(x); err != nil {
		return err
	}
	if err := p.checkKeyQuota(x); err != nil {
		return err
	}
	if err := p.checkProof(x); err != nil {
		return err
	}
	var req ticketRequest
	dec := json.NewDecoder(io.LimitReader(x.r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return &Error{Code: CodeInvalidRequest, Msg: "body must be {\"path\": ...}", Err: err, Rule: "ticket.body"}
	}
	path, err := CanonicalPath(req.Path)
	if err != nil {
		return &Error{Code: CodeInvalidRequest, Msg: err.Error(), Err: err, Rule: "ticket.path"}
	}
	x.path = path
	x.route, x.pathOnly = p.router.lookup(http.MethodGet, path)
	if x.route == nil || !x.route.WebSocket {
		return &Error{Code: CodeNotFound, Msg: "no WebSocket route at path", Rule: "ticket.route"}
	}
	if err := checkScopes(x); err != nil {
		return err
	}
	if err := p.checkOrigin(x); err != nil {
		return err
	}
	if err := p.ticketLimits(x); err != nil {
		return err
	}
	var b [32]byte
	rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	ttl := p.cfg.WebSocket.TicketTTL
	until := p.now().Add(ttl)
	if until.After(x.claims.Expiry) {
		until = x.claims.Expiry
	}
	p.ticketQuota.Add(x.claims.ClientID+"\x00"+x.claims.Subject, until)
	if err := p.tickets.Put(x.r.Context(), id, Ticket{Path: path, JKT: x.proof.JKT, Claims: *x.claims}, until); err != nil {
		return &Error{Code: CodeUnavailable, Msg: "ticket store unavailable", Err: err, Rule: "ticket.store"}
	}
	body, _ := json.Marshal(ticketResponse{Ticket: id, ExpiresIn: int(ttl / time.Second)})
	h := x.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	p.setNonce(x)
	p.corsAllow(x)
	x.w.WriteHeader(http.StatusOK)
	x.w.Write(body)
	return nil
}

// ticketLimits bounds what one subject can make the ticket store hold: a
// rate limit on the endpoint (websocket.ticket_rate) and a cap on the
// tickets issued to it within their TTL (websocket.tickets_per_subject),
// both 429 with Retry-After, so one lease holder cannot fill the store
// for everyone.
func (p *Proxy) ticketLimits(x *exchange) *Error {
	who := x.claims.ClientID + "\x00" + x.claims.Subject
	if retry, ok := p.ticketQuota.Check(who); !ok {
		return &Error{Code: CodeRateLimited, Msg: "too many live WebSocket tickets", Rule: "ticket.per_subject", RetryAfter: max(retry, time.Second)}
	}
	res, err := p.limiter.Allow(x.r.Context(), "ticket\x00"+who, p.cfg.WebSocket.TicketRate, p.now())
	if err != nil {
		return &Error{Code: CodeUnavailable, Msg: "rate limiter unavailable", Err: err, Rule: "ratelimit.store"}
	}
	if !res.Allowed {
		return &Error{Code: CodeRateLimited, Msg: "rate limit exceeded", Rule: "ticket.rate", RetryAfter: max(res.RetryAfter, time.Second)}
	}
	return nil
}

// redeemTicket authenticates an upgrade by its ticket: used once, for the
// path it was issued for, before it expires, and only while the lease is
// neither expired nor revoked. A request carrying both a ticket and
// Authorization is ambiguous (400).
func (p *Proxy) redeemTicket(x *exchange) *Error {
	vals := x.r.URL.Query()[p.cfg.WebSocket.TicketParam]
	if len(vals) != 1 || len(x.r.Header.Values("Authorization")) > 0 || len(x.r.Header.Values("DPoP")) > 0 {
		return &Error{Code: CodeInvalidRequest, Msg: "exactly one ticket and no other credentials", Rule: "ticket"}
	}
	t, ok, err := p.tickets.Take(x.r.Context(), vals[0])
	if err != nil {
		return &Error{Code: CodeUnavailable, Msg: "ticket store unavailable", Err: err, Rule: "ticket.store"}
	}
	if !ok {
		return &Error{Code: CodeInvalidToken, Msg: "ticket unknown, used or expired", Rule: "ticket"}
	}
	if t.Path != x.path {
		return &Error{Code: CodeInvalidToken, Msg: "ticket was issued for another path", Rule: "ticket.path"}
	}
	c := t.Claims
	if !p.now().Before(c.Expiry) {
		return &Error{Code: CodeInvalidToken, Msg: "token expired", Rule: "token.exp"}
	}
	x.claims, x.ticket = &c, true
	return p.checkRevoked(x, &c)
}

// watchLease cancels an open WebSocket's context, which closes the tunnel,
// once its lease expires or is revoked (or the revocation store cannot
// answer: fail closed). It checks every WebSocket.CheckInterval.
func (p *Proxy) watchLease(ctx context.Context, cancel context.CancelFunc, c *token.Claims) {
	tick := time.NewTicker(p.cfg.WebSocket.CheckInterval)
	defer tick.Stop()
	x := &exchange{r: (&http.Request{}).WithContext(ctx)}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if !p.now().Before(c.Expiry) || p.checkRevoked(x, c) != nil {
				cancel()
				return
			}
		}
	}
}
