package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/nonce"
	"github.com/keyless-dev/keyless/sidecar/proxy/check"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/keyquota"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// Options are the proxy's collaborators: what is not configuration.
type Options struct {
	// Tokens verifies leases (signature against the issuers' JWKS, typ,
	// iss, aud, exp, nbf); errors must wrap token.ErrInvalidToken for a
	// 401, anything else is a 503. Nil means a token.JWTVerifier built from
	// Config.Token.Issuer and Config.Token.JWKSURL.
	Tokens token.Verifier
	// Replay is the jti replay cache, shared by replicas; nil means an
	// in-memory cache (one replica only).
	Replay store.Replay
	// Revocations, shared by replicas; nil means in memory.
	Revocations store.Revocations
	// Limiter for rate limits; nil means in memory.
	Limiter ratelimit.Limiter
	// Tickets holds WebSocket tickets; nil means in memory.
	Tickets TicketStore
	// NonceKey is the server-nonce HMAC key shared by replicas; nil means
	// Config.DPoP.Nonce.KeyFile, or a random key if that is empty.
	NonceKey nonce.KeySource
	// Credentials overrides the credential source of upstreams by name
	// (e.g. an OAuth client-credentials or cloud STS source); upstreams not
	// named use their config's credential.
	Credentials map[string]CredentialSource
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one JSON audit line per decision; nil means JSON on
	// stderr. One from [NewAuditLogger] lets the proxy encode its decision
	// lines itself (the same bytes, without slog's per-line work).
	Logger *slog.Logger
	// Registry for metrics; nil means a new registry, served by
	// [Proxy.AdminHandler].
	Registry *prometheus.Registry
	// Audit reports whether Logger's lines are being written; nil means
	// they always are. While it reports a failure /readyz is red and,
	// with audit.on_failure refuse, requests are answered 503.
	Audit AuditSink
}

// Proxy is the DPoP-checking reverse proxy: an http.Handler. Build it with
// [New].
type Proxy struct {
	cfg         Config
	publicBase  string // PublicURL without a trailing slash
	publicHost  string
	publicProto string
	algs        string // for WWW-Authenticate
	verifyOpts  dpop.VerifyOptions
	tokens      token.Verifier
	keys        token.Readier // nil: keys are local (an embedded issuer's)
	cache       *check.TokenCache
	revocations store.Revocations
	limiter     ratelimit.Limiter
	tickets     TicketStore
	nonces      *nonce.Source
	now         func() time.Time
	log         *slog.Logger
	auditOut    *lockedWriter // log's writer when it came from NewAuditLogger
	metrics     *metrics
	router      router
	strip       headerMatcher // inbound headers never forwarded
	stripResp   headerMatcher // upstream response headers never returned
	origins     *check.Origins
	hosts       *check.Hosts
	auditSink   AuditSink
	quota       *keyquota.Quota // nil: no per-key replay bound
	ticketQuota *keyquota.Quota // live tickets per app and subject

	inflight sync.WaitGroup // requests in ServeHTTP
	active   atomic.Int64
	base     context.Context // requests derive from it (NewServer); cut cancels it
	cut      context.CancelFunc
}

// route is a configured route, compiled.
type route struct {
	Route
	pattern   pattern
	scope     string // Scopes joined, for the scope= parameter
	proxy     *httputil.ReverseProxy
	upstream  *url.URL
	cred      CredentialSource
	slots     chan struct{} // the upstream's in-flight slots, shared by its routes
	credStrip headerMatcher
	contentOK check.ContentTypes
}

var _ http.Handler = (*Proxy)(nil)

// New builds a Proxy from cfg (defaults applied, then validated) and opts.
func New(cfg Config, opts Options) (*Proxy, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Tokens == nil {
		if cfg.Token.Issuer == "" || cfg.Token.JWKSURL == "" {
			return nil, errors.New("proxy: Options.Tokens, or token.issuer and token.jwks_url, are required")
		}
		opts.Tokens = &token.JWTVerifier{
			Keys:     &token.RemoteJWKS{URL: cfg.Token.JWKSURL, Now: opts.Now},
			Issuer:   cfg.Token.Issuer,
			Audience: cfg.Audience,
			Leeway:   cfg.Token.Leeway,
			Now:      opts.Now,
		}
	}
	p := &Proxy{
		cfg:         cfg,
		publicBase:  strings.TrimSuffix(cfg.PublicURL, "/"),
		tokens:      opts.Tokens,
		revocations: opts.Revocations,
		limiter:     opts.Limiter,
		tickets:     opts.Tickets,
		now:         opts.Now,
		log:         opts.Logger,
		auditSink:   opts.Audit,
	}
	if v, ok := opts.Tokens.(*token.JWTVerifier); ok {
		p.keys, _ = v.Keys.(token.Readier)
	}
	p.base, p.cut = context.WithCancel(context.Background())
	u, _ := url.Parse(cfg.PublicURL)
	p.publicHost, p.publicProto = u.Host, u.Scheme
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = NewAuditLogger(os.Stderr)
	}
	p.auditOut = auditWriter(p.log)
	replay := opts.Replay
	if replay == nil {
		replay = &memstore.Replay{Now: p.now}
	}
	if p.revocations == nil {
		p.revocations = &memstore.Revocations{Now: p.now}
	}
	if p.limiter == nil {
		p.limiter = &ratelimit.Memory{}
	}
	if p.tickets == nil {
		p.tickets = &MemTickets{Now: p.now}
	}
	// Every store call is bounded by StoreTimeout (deadline.go).
	st := cfg.StoreTimeout
	replay = deadlineReplay{replay, st}
	p.ticketQuota = keyquota.New(cfg.WebSocket.TicketsPerSubject, cfg.WebSocket.TicketTTL, p.now)
	if n := keyQuotaMax(cfg); n > 0 {
		p.quota = keyquota.New(n, cfg.DPoP.MaxAge+cfg.DPoP.FutureSkew, p.now)
		replay = keyquota.Replay{Replay: replay, Quota: p.quota}
	}
	p.revocations = deadlineRevocations{p.revocations, st}
	p.limiter = deadlineLimiter{p.limiter, st}
	p.tickets = deadlineTickets{p.tickets, st}
	p.verifyOpts = dpop.VerifyOptions{
		Algs:       cfg.DPoP.Algs,
		MaxAge:     cfg.DPoP.MaxAge,
		FutureSkew: cfg.DPoP.FutureSkew,
		Now:        p.now,
		Replay:     replay,
		// Every proof of one key carries the same header: decode it
		// once (the signature and claims are checked on every proof).
		Headers: &dpop.HeaderCache{},
	}
	p.algs = strings.Join(p.verifyOpts.AllowedAlgs(), " ")
	if cfg.DPoP.Nonce.Enabled {
		ks := opts.NonceKey
		if ks == nil && cfg.DPoP.Nonce.KeyFile != "" {
			b, err := os.ReadFile(cfg.DPoP.Nonce.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("proxy: dpop.nonce.key_file: %w", err)
			}
			ks = nonce.StaticKey(b)
		}
		if ks == nil {
			ks = nonce.RandomKey()
		}
		src, err := nonce.New(context.Background(), ks, cfg.DPoP.Nonce.Rotate, p.now)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		p.nonces = src
		p.verifyOpts.Nonce = src
	}
	if cfg.Token.CacheEntries > 0 {
		p.cache = check.NewTokenCache(cfg.Token.CacheEntries)
	}
	p.metrics = newMetrics(opts.Registry, p.auditSink)
	p.origins = check.NewOrigins(cfg.CORS)
	p.hosts = check.NewHosts(cfg.PublicURL, cfg.Hosts)
	p.strip = requestStripList(cfg.Headers)
	p.stripResp = responseStripList(cfg.Headers)

	ups, err := p.buildUpstreams(opts.Credentials)
	if err != nil {
		return nil, err
	}
	for _, r := range cfg.Routes {
		pt, _ := compilePattern(r.Path)
		rt := &route{Route: r, pattern: pt, scope: strings.Join(r.Scopes, " "), contentOK: check.NewContentTypes(r.ContentTypes)}
		if up, ok := ups[r.Upstream]; ok {
			rt.upstream, rt.slots = up.url, up.slots
			transport := up.transport
			if up.cred != nil {
				// The client's copy is stripped on every route; the
				// credential itself is sent only where the route says.
				rt.credStrip.addName(up.cred.HeaderNames()...)
				if r.SendsCredential() {
					rt.cred = up.cred
					transport = &credTransport{base: up.transport, cred: up.cred}
				}
			}
			rt.proxy = p.reverseProxy(rt, transport)
		}
		p.router.routes = append(p.router.routes, rt)
	}
	return p, nil
}

// Config returns the configuration in use, defaults applied.
func (p *Proxy) Config() Config { return p.cfg }

// exchange is one request's state as it moves through the check chain.
type exchange struct {
	w        *statusWriter
	r        *http.Request
	start    time.Time
	rawPath  string // as sent, for htu
	path     string // canonical, for matching and forwarding
	route    *route
	pathOnly bool // a route matched the path but not the method
	upgrade  bool // a WebSocket upgrade on a WebSocket route
	ticket   bool // authenticated by a WebSocket ticket
	token    string
	tokenID  string   // SHA-256 of the token, hex prefix, for logs
	tokenSum [32]byte // SHA-256 of the token: token cache key and ath, hashed once
	claims   *token.Claims
	proof    *dpop.Proof
	form     []byte             // a urlencoded body, read by checkBody
	cancel   context.CancelFunc // cancels the upstream request (forward)
	err      *Error             // the refusal, if any, for the audit line
}

// ServeHTTP runs the check chain and forwards what passes.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer p.track()()
	x := &exchange{w: &statusWriter{ResponseWriter: w}, r: r, start: p.now()}
	if err := p.serve(x); err != nil {
		x.err = err
		p.render(x, err)
	}
	p.audit(x)
}

// serve is the check chain, top to bottom. Each step returns nil to go on
// or the refusal; the steps that answer (preflight, ticket, preview,
// forward) end it.
func (p *Proxy) serve(x *exchange) *Error {
	if err := p.checkAudit(); err != nil {
		return err
	}
	if err := p.checkMethod(x); err != nil {
		return err
	}
	if err := p.checkPath(x); err != nil {
		return err
	}
	if err := p.checkHost(x); err != nil {
		return err
	}
	if err := p.checkFraming(x); err != nil {
		return err
	}
	if isPreflight(x.r) {
		return p.preflight(x)
	}
	if x.r.Method == http.MethodPost && x.path == p.cfg.WebSocket.TicketPath {
		return p.issueTicket(x)
	}
	p.matchRoute(x)
	p.checkUpgrade(x)
	if x.route != nil && x.route.Anonymous {
		if err := p.checkBody(x); err != nil {
			return err
		}
		return p.forward(x)
	}
	if err := p.authenticate(x); err != nil {
		return err
	}
	if err := p.authorize(x); err != nil {
		return err
	}
	if err := p.checkOrigin(x); err != nil {
		return err
	}
	if err := p.rateLimit(x); err != nil {
		return err
	}
	if err := p.checkBody(x); err != nil {
		return err
	}
	if err := check.TokenParams(x.r.URL.RawQuery, x.form); err != nil {
		return err
	}
	if x.claims.Preview {
		return p.preview(x)
	}
	return p.forward(x)
}

// authenticate establishes who is calling: a WebSocket ticket, or DPoP
// credentials (scheme, token, proof).
func (p *Proxy) authenticate(x *exchange) *Error {
	if x.upgrade && x.r.URL.Query().Has(p.cfg.WebSocket.TicketParam) {
		return p.redeemTicket(x)
	}
	if err := p.checkScheme(x); err != nil {
		return err
	}
	if err := p.checkToken(x); err != nil {
		return err
	}
	// The cheap limit before the proof's signature and its replay entry:
	// the key's quota of live replay entries. (The rate limit stays after
	// the proof, so proofs a replica refuses never spend a subject's
	// bucket; the quota is what protects the replay cache.)
	if err := p.checkKeyQuota(x); err != nil {
		return err
	}
	return p.checkProof(x)
}

// checkMethod refuses methods outside the standard set (405).
func (p *Proxy) checkMethod(x *exchange) *Error {
	return check.Method(x.r.Method)
}

// checkPath takes the raw path once and canonicalizes it (400 for
// ambiguous forms), and refuses a query the upstream could read
// differently ([check.Query]).
func (p *Proxy) checkPath(x *exchange) *Error {
	raw, c, err := check.Path(x.r.RequestURI)
	if err != nil {
		return err
	}
	x.rawPath, x.path = raw, c
	return check.Query(x.r.URL.RawQuery)
}

// checkHost refuses requests for a host other than the public URL's or an
// alias (421), before anything else looks at them.
func (p *Proxy) checkHost(x *exchange) *Error { return p.hosts.Check(x.r.Host) }

// matchRoute finds the route; a miss is answered only after
// authentication, so unauthenticated callers learn nothing about routes.
func (p *Proxy) matchRoute(x *exchange) {
	x.route, x.pathOnly = p.router.lookup(x.r.Method, x.path)
}

// statusWriter records the status for the audit line. Unwrap lets
// http.ResponseController (used by ReverseProxy) reach Hijack and Flush.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the final status: an informational 1xx (103 Early
// Hints relayed from the upstream) is not the answer, 101 is.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
