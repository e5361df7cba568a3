package edge

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/nonce"
	"github.com/keyless-dev/keyless/sidecar/proxy/check"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token/atjwt"
)

// Host is what the runtime provides: in the Worker, WebCrypto, fetch and
// Durable Objects (sidecar/edge/worker); in tests, Go fakes.
type Host interface {
	// Verify checks a JWS signature (raw R||S for ECDSA) over input by
	// key, through crypto.subtle.verify in the Worker. It backs both the
	// proofs (dpop.VerifyOptions.Verifier) and the leases.
	Verify(alg string, key *dpop.JWK, input, sig []byte) error
	// FetchJWKS returns the issuer's JWK Set document.
	FetchJWKS(ctx context.Context, url string) ([]byte, error)
	// UseJTI is the replay cache's Use (dpop.ReplayCache: record jkt's
	// jti until until, dpop.ErrReplay if it is live already), bounded per
	// key: a key that already holds max live entries gets a [*QuotaError]
	// and nothing is recorded (max ≤ 0: no bound). It must be strongly
	// consistent across isolates: a Durable Object per key thumbprint in
	// the Worker, which holds every live jti of its key.
	UseJTI(ctx context.Context, jkt, jti string, until time.Time, max int) error
	// Revocations are the issuer's revocations as pushed to the edge.
	store.Revocations
	// Limiter holds the rate-limit buckets: one Durable Object per bucket
	// in the Worker, so every isolate and location takes from one bucket.
	ratelimit.Limiter
}

// QuotaError is [Host.UseJTI]'s refusal of a key at its quota of live
// replay entries: Retry is when its oldest entry expires.
type QuotaError struct{ Retry time.Duration }

func (e *QuotaError) Error() string { return "edge: key holds its quota of live replay entries" }

// replayQuota is the dpop.ReplayCache the proofs are checked against: the
// Host's, with the per-key quota of the process proxy ([check.KeyQuota]).
type replayQuota struct {
	host Host
	max  int
}

func (r replayQuota) Use(ctx context.Context, jkt, jti string, until time.Time) error {
	return r.host.UseJTI(ctx, jkt, jti, until, r.max)
}

// Request is what the Handler needs of an incoming request.
type Request struct {
	Method string
	// URL is the absolute URL the runtime reports (request.url).
	URL string
	// Header holds every field by name (any case). A runtime that joins
	// repeated fields into one comma-separated value (the Fetch API does)
	// hands that one value over.
	Header map[string][]string
	// ContentLength is the body length; -1 when unknown. HasBody reports a
	// body at all.
	ContentLength int64
	HasBody       bool
	// ClientIP is the caller's address as the platform reports it
	// (CF-Connecting-IP), forwarded as X-Forwarded-For.
	ClientIP string
	// ReadBody reads at most limit bytes of the body and stops reading
	// there; nil means the runtime offers no body. The Handler calls it
	// only for the revocation push endpoint, after the push token was
	// checked, so no other request's body is buffered here.
	ReadBody func(limit int64) ([]byte, error)
}

func (r *Request) get(name string) string {
	if v := r.values(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (r *Request) values(name string) []string {
	if v, ok := r.Header[name]; ok {
		return v
	}
	for k, v := range r.Header {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// Response is an answer given at the edge: a refusal, a preflight, a
// preview, a revocation push.
type Response struct {
	Status int
	Header [][2]string
	Body   []byte
	// Audit is the decision for the audit line.
	Audit *Decision
}

// Forward is a request that passed: send Method to URL with exactly
// Header (the inbound body unless NoBody), then strip the response
// headers StripResponse matches and add AddResponse.
type Forward struct {
	Method        string
	URL           string
	Header        [][2]string
	NoBody        bool
	StripResponse *check.HeaderMatcher
	AddResponse   [][2]string
	// Route names the route, for logs.
	Route string
	// Audit is the decision for the audit line, written once the origin
	// answered (or [Handler.UpstreamFailed] did).
	Audit *Decision
}

// Handler runs the sidecar's check chain at the edge. Build it with [New];
// it is safe for concurrent requests.
type Handler struct {
	cfg        *Config
	host       Host
	now        func() time.Time
	publicBase string
	publicHost string
	publicProt string
	algs       string
	verifyOpts dpop.VerifyOptions
	nonces     *nonce.Source
	cache      *check.TokenCache
	keys       *keyCache
	origins    *check.Origins
	hosts      *check.Hosts
	strip      check.HeaderMatcher
	stripResp  check.HeaderMatcher
	routes     []*route
	revoked    revokedCache
}

type route struct {
	check.Route
	pattern   check.Pattern
	upstream  *url.URL
	cred      [2]string // header, value; empty header means none
	credStrip check.HeaderMatcher
	content   check.ContentTypes
}

// New builds a Handler. now nil means time.Now.
func New(cfg *Config, host Host, now func() time.Time) (*Handler, error) {
	if now == nil {
		now = time.Now
	}
	pc := cfg.Proxy
	h := &Handler{
		cfg:        cfg,
		host:       host,
		now:        now,
		publicBase: strings.TrimSuffix(pc.PublicURL, "/"),
		origins:    check.NewOrigins(pc.CORS),
		hosts:      check.NewHosts(pc.PublicURL, pc.Hosts),
		strip:      check.RequestStripList(pc.Headers),
		stripResp:  check.ResponseStripList(pc.Headers),
		keys:       &keyCache{url: pc.Token.JWKSURL, fetch: host.FetchJWKS, now: now},
		revoked:    revokedCache{ttl: cfg.RevocationTTL, m: map[[32]byte]time.Time{}},
	}
	u, _ := url.Parse(pc.PublicURL)
	h.publicHost, h.publicProt = u.Host, u.Scheme
	h.verifyOpts = dpop.VerifyOptions{
		Algs:       pc.DPoP.Algs,
		MaxAge:     pc.DPoP.MaxAge,
		FutureSkew: pc.DPoP.FutureSkew,
		Now:        now,
		Replay:     replayQuota{host, check.KeyQuota(pc)},
		Verifier:   host.Verify,
	}
	h.algs = strings.Join(h.verifyOpts.AllowedAlgs(), " ")
	if pc.DPoP.Nonce.Enabled {
		src, err := nonce.New(context.Background(), nonce.StaticKey(cfg.NonceKey), pc.DPoP.Nonce.Rotate, now)
		if err != nil {
			return nil, err
		}
		h.nonces = src
		h.verifyOpts.Nonce = src
	}
	if pc.Token.CacheEntries > 0 {
		h.cache = check.NewTokenCache(pc.Token.CacheEntries)
	}
	for _, r := range pc.Routes {
		pt, _ := check.CompilePattern(r.Path)
		rt := &route{Route: r, pattern: pt, content: check.NewContentTypes(r.ContentTypes)}
		if up, ok := pc.Upstreams[r.Upstream]; ok {
			rt.upstream, _ = url.Parse(up.URL)
			if cr := up.Credential; cr != nil {
				rt.cred = [2]string{cr.Header, cfg.Credentials[r.Upstream]}
				rt.credStrip.AddName(cr.Header)
			}
		}
		h.routes = append(h.routes, rt)
	}
	return h, nil
}

// exchange is one request's state through the chain.
type exchange struct {
	r        *Request
	rawPath  string
	path     string
	query    string
	route    *route
	pathOnly bool
	token    string
	claims   *atjwt.Claims
	// limitHeaders are the RateLimit-* fields of the tighter bucket, sent
	// on the answer whatever it is.
	limitHeaders [][2]string
	start        time.Time
	tokenSum     [32]byte
}

// Serve runs the check chain, in the order of proxy.Proxy's serve, and
// returns either the forward to make or the answer to give.
func (h *Handler) Serve(ctx context.Context, r *Request) (*Forward, *Response) {
	x := &exchange{r: r, start: h.now()}
	f, res, err := h.serve(ctx, x)
	if err != nil {
		res = h.render(x, err)
		res.Audit = h.decision(x, err)
		return nil, res
	}
	if f != nil {
		f.Audit = h.decision(x, nil)
	} else {
		res.Audit = h.decision(x, nil)
	}
	return f, res
}

func (h *Handler) serve(ctx context.Context, x *exchange) (*Forward, *Response, *check.Error) {
	r := x.r
	// server.max_header_bytes, which net/http enforces for the process
	// proxy: the platform's own limit is larger.
	if headerBytes(r) > h.cfg.Proxy.Server.MaxHeaderBytes {
		return nil, &Response{Status: 431, Header: [][2]string{{"Content-Type", "text/plain; charset=utf-8"}},
			Body: []byte("431 Request Header Fields Too Large")}, nil
	}
	if err := check.Method(r.Method); err != nil {
		return nil, nil, err
	}
	raw, c, err := check.Path(r.URL)
	if err != nil {
		return nil, nil, err
	}
	x.rawPath, x.path = raw, c
	if i := strings.IndexByte(r.URL, '?'); i >= 0 {
		x.query = r.URL[i:]
		if j := strings.IndexByte(x.query, '#'); j >= 0 {
			x.query = x.query[:j]
		}
	}
	if err := check.Query(strings.TrimPrefix(x.query, "?")); err != nil {
		return nil, nil, err
	}
	// The host the platform routed on is request.url's authority (the
	// Host field a client sent): one that is not public_url's or a
	// `hosts` alias (a workers.dev name, say) is 421, as natively.
	if err := h.hosts.Check(urlHost(r.URL)); err != nil {
		return nil, nil, err
	}
	if r.Method == "OPTIONS" && r.get("Origin") != "" && r.get("Access-Control-Request-Method") != "" {
		res, err := h.preflight(x)
		return nil, res, err
	}
	if r.Method == "POST" && x.path == RevocationPath && h.cfg.RevokeToken != "" {
		res, err := h.pushRevocation(ctx, x)
		return nil, res, err
	}
	if r.Method == "POST" && x.path == h.cfg.Proxy.WebSocket.TicketPath {
		// WebSocket tickets are not served at the edge.
		return nil, nil, &check.Error{Code: check.CodeNotFound, Msg: "no such route", Rule: "websocket.ticket"}
	}
	rt, ok, pathOnly := check.Lookup(h.routes, r.Method, x.path, func(rt *route) (*check.Pattern, []string) {
		return &rt.pattern, rt.Methods
	})
	if ok {
		x.route = rt
	}
	x.pathOnly = pathOnly
	if x.route != nil && x.route.Anonymous {
		if err := h.checkBody(x); err != nil {
			return nil, nil, err
		}
		return h.forward(x)
	}
	if err := h.authenticate(ctx, x); err != nil {
		return nil, nil, err
	}
	if err := check.Route404(x.route != nil, x.pathOnly); err != nil {
		return nil, nil, err
	}
	if err := check.Scopes(x.route.Scopes, x.claims); err != nil {
		return nil, nil, err
	}
	if err := h.origins.Check(x.claims.ClientID, r.get("Origin")); err != nil {
		return nil, nil, err
	}
	if err := h.rateLimit(ctx, x); err != nil {
		return nil, nil, err
	}
	if err := h.checkBody(x); err != nil {
		return nil, nil, err
	}
	// The body is never read here (only streamed to the origin), so an
	// access_token in a urlencoded body is not looked for at the edge.
	if err := check.TokenParams(strings.TrimPrefix(x.query, "?"), nil); err != nil {
		return nil, nil, err
	}
	if x.claims.Preview {
		res, err := h.preview(x)
		return nil, res, err
	}
	if len(x.route.Redact) > 0 {
		// Responses are streamed, never parsed, at the edge: a route that
		// needs redaction is refused rather than passed unredacted.
		return nil, nil, &check.Error{Code: check.CodeBadGateway, Msg: "upstream response could not be checked", Rule: "redact"}
	}
	return h.forward(x)
}

// urlHost is the authority of an absolute URL ("" when it has none, which
// no host allows).
func urlHost(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// headerBytes is the size of the request line and header section.
func headerBytes(r *Request) int {
	n := len(r.Method) + len(r.URL) + 11
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// authenticate: scheme, lease (cache, JWKS, WebCrypto signature, lease
// rules, time, revocation), then the proof through the DPoP core.
func (h *Handler) authenticate(ctx context.Context, x *exchange) *check.Error {
	tok, err := check.Scheme(authorizationValues(x.r.values("Authorization")))
	if err != nil {
		return err
	}
	x.token = tok
	sum := sha256.Sum256([]byte(tok))
	x.tokenSum = sum
	now := h.now()
	var c *atjwt.Claims
	if h.cache != nil {
		c = h.cache.Get(sum, now)
	}
	if c == nil {
		if err := check.TokenSyntax(tok); err != nil {
			return err
		}
		v, err := h.verifyToken(ctx, tok)
		if err != nil {
			return check.TokenVerifyError(err)
		}
		if err := check.Lease(v, h.cfg.Proxy.Audience); err != nil {
			return err
		}
		c = v
		if h.cache != nil {
			h.cache.Put(sum, c, c.Expiry.Add(h.cfg.Proxy.Token.Leeway), now)
		}
	}
	if err := check.TokenTime(c, now, h.cfg.Proxy.Token.Leeway); err != nil {
		return err
	}
	x.claims = c
	if !h.revoked.fresh(sum, now) {
		if err := check.Revoked(h.host.AnyRevoked(ctx, check.Revocations(c)...)); err != nil {
			return err
		}
		h.revoked.put(sum, now)
	}
	proof, perr := dpop.SingleProof(x.r.values("DPoP"))
	if perr == nil {
		_, perr = dpop.Verify(ctx, proof, dpop.Request{
			Method:      x.r.Method,
			URL:         h.publicBase + x.rawPath,
			AccessToken: tok,
			JKT:         c.JKT,
		}, h.verifyOpts)
	}
	if perr != nil {
		// The quota is checked where the key's entries are, in its
		// replay object, so after the proof's signature (natively it is
		// checked before, in the process).
		var qe *QuotaError
		if errors.As(perr, &qe) {
			return check.KeyQuotaError(qe.Retry)
		}
		return check.ProofError(perr)
	}
	return nil
}

// authorizationValues splits a joined Authorization value back into
// fields: the Fetch API joins repeated fields with ", ", and a DPoP
// credential (token68) never holds a comma.
func authorizationValues(v []string) []string {
	var out []string
	for _, s := range v {
		for _, f := range strings.Split(s, ",") {
			out = append(out, strings.TrimLeft(f, " "))
		}
	}
	return out
}

// verifyToken is token.JWTVerifier's check at the edge: atjwt's header and
// claim rules, the key from the issuer's JWKS, the signature through Host.
func (h *Handler) verifyToken(ctx context.Context, raw string) (*atjwt.Claims, error) {
	p, err := atjwt.Parse(raw, 0)
	if err != nil {
		return nil, err
	}
	key, err := h.keys.key(ctx, p.KID)
	if err != nil {
		return nil, err
	}
	sig, err := p.DecodeSignature()
	if err != nil {
		return nil, err
	}
	if err := h.host.Verify(atjwt.Alg, key, []byte(p.SigningInput), sig); err != nil {
		return nil, errors.Join(atjwt.ErrInvalid, errors.New("token: signature does not verify"))
	}
	pc := h.cfg.Proxy
	return p.Claims(atjwt.Options{Issuer: pc.Token.Issuer, Audience: pc.Audience, Leeway: pc.Token.Leeway, Now: h.now})
}

func (h *Handler) checkBody(x *exchange) *check.Error {
	if !x.r.HasBody {
		return nil
	}
	if err := check.BodyLength(x.route.MaxBodyBytes, x.r.ContentLength); err != nil {
		return err
	}
	return x.route.content.Check(x.r.get("Content-Type"))
}

// forward builds the outbound request: the canonical path (minus the
// route's prefix) on the upstream URL with the query as sent, inbound
// headers stripped, then the forwarding, credential and identity headers
// set.
func (h *Handler) forward(x *exchange) (*Forward, *Response, *check.Error) {
	rt := x.route
	if rt == nil || rt.upstream == nil {
		return nil, nil, &check.Error{Code: check.CodeNotFound, Msg: "no such route", Rule: "route"}
	}
	u := *rt.upstream
	target := strings.TrimSuffix(u.Scheme+"://"+u.Host+u.EscapedPath(), "/") + check.ForwardPath(rt.StripPrefix, x.path) + x.query
	f := &Forward{Method: x.r.Method, URL: target, NoBody: x.r.Method == "GET" || x.r.Method == "HEAD", StripResponse: &h.stripResp, Route: rt.Name}
	for name, vs := range x.r.Header {
		if h.strip.Match(name) || rt.credStrip.Match(name) || (!rt.AllowCookies && strings.EqualFold(name, "Cookie")) ||
			transportHeader(name) {
			continue
		}
		for _, v := range vs {
			f.Header = append(f.Header, [2]string{name, v})
		}
	}
	if x.r.ClientIP != "" {
		f.Header = append(f.Header, [2]string{"X-Forwarded-For", x.r.ClientIP})
	}
	f.Header = append(f.Header, [2]string{"X-Forwarded-Host", h.publicHost}, [2]string{"X-Forwarded-Proto", h.publicProt})
	if rt.cred[0] != "" {
		f.Header = append(f.Header, rt.cred)
	}
	if x.claims != nil {
		f.Header = append(f.Header, check.Identity(h.cfg.Proxy.Headers, x.claims)...)
	}
	f.AddResponse = h.responseHeaders(x, nil)
	return f, nil, nil
}

// transportHeader reports the fields fetch derives from the URL and the
// body itself (ReverseProxy does the same for the process proxy): the
// client's Host never reaches the origin.
func transportHeader(name string) bool {
	switch strings.ToLower(name) {
	case "host", "content-length", "transfer-encoding", "te":
		return true
	}
	return false
}

// MaxBody is the largest body any route accepts: a body of unknown length
// is read at most this far (plus one byte) before the chain decides.
func (h *Handler) MaxBody() int64 {
	var m int64
	for _, rt := range h.routes {
		m = max(m, rt.MaxBodyBytes)
	}
	return m
}

// UpstreamFailed is the answer when the origin cannot be reached: 502,
// rendered like every refusal.
func (h *Handler) UpstreamFailed(r *Request, f *Forward, err error) *Response {
	e := &check.Error{Code: check.CodeBadGateway, Msg: "upstream unavailable", Err: err, Rule: "upstream"}
	res := h.render(&exchange{r: r}, e)
	res.Audit = f.Audit
	if res.Audit != nil {
		res.Audit.fail(e)
	}
	return res
}

// rateLimit applies the route's per-subject, then per-app limits as the
// process proxy does ([check.TakeRateLimit]) and keeps the tighter bucket's
// RateLimit-* fields for the answer.
func (h *Handler) rateLimit(ctx context.Context, x *exchange) *check.Error {
	tight, err := check.TakeRateLimit(ctx, h.host, &x.route.Route, x.claims, h.now())
	if tight != nil {
		f := check.RateLimitFields(tight)
		x.limitHeaders = f[:]
	}
	return err
}

// responseHeaders are the CORS, nonce and rate-limit headers of every
// answer.
func (h *Handler) responseHeaders(x *exchange, hs [][2]string) [][2]string {
	hs = append(hs, x.limitHeaders...)
	origin := x.r.get("Origin")
	app := ""
	if x.claims != nil {
		app = x.claims.ClientID
	}
	if h.origins.Allow(origin, app, x.claims != nil) {
		hs = append(hs, [2]string{"Access-Control-Allow-Origin", origin}, [2]string{"Vary", "Origin"},
			[2]string{"Access-Control-Expose-Headers", check.ExposeHeaders})
	}
	if h.nonces != nil {
		hs = append(hs, [2]string{"DPoP-Nonce", h.nonces.Current()})
	}
	return hs
}

func (h *Handler) preflight(x *exchange) (*Response, *check.Error) {
	origin := x.r.get("Origin")
	if err := h.origins.Preflight(origin); err != nil {
		return nil, err
	}
	return &Response{Status: 204, Header: [][2]string{
		{"Access-Control-Allow-Origin", origin},
		{"Vary", "Origin"},
		{"Access-Control-Allow-Methods", check.PreflightAllowMethods},
		{"Access-Control-Allow-Headers", check.PreflightAllowHeaders},
		{"Access-Control-Expose-Headers", check.ExposeHeaders},
		{"Access-Control-Max-Age", strconv.Itoa(int(h.cfg.Proxy.CORS.MaxAge.Seconds()))},
	}}, nil
}

func (h *Handler) preview(x *exchange) (*Response, *check.Error) {
	pv := x.route.Preview
	if pv == nil {
		return nil, &check.Error{Code: check.CodePreviewMissing, Msg: "no preview response for this route", Rule: "preview"}
	}
	ct := pv.ContentType
	if ct == "" {
		ct = "application/json"
	}
	status := pv.Status
	if status == 0 {
		status = 200
	}
	res := &Response{Status: status, Header: h.responseHeaders(x, [][2]string{{"Content-Type", ct}, {"Cache-Control", "no-store"}})}
	if x.r.Method != "HEAD" {
		res.Body = []byte(pv.Body)
	}
	return res, nil
}

// render is the one place refusals are produced, as proxy's render does.
func (h *Handler) render(x *exchange, e *check.Error) *Response {
	hs := [][2]string{}
	if check.Challenged(e.Code) {
		hs = append(hs, [2]string{"WWW-Authenticate", check.Challenge(e, h.algs)})
	}
	hs = append(hs, [2]string{"Access-Control-Expose-Headers", check.ExposeHeaders})
	hs = h.responseHeaders(x, hs)
	if e.RetryAfter > 0 {
		hs = append(hs, [2]string{"Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10)})
	}
	hs = append(hs, [2]string{"Cache-Control", "no-store"}, [2]string{"Content-Type", "application/json"}, [2]string{"X-Content-Type-Options", "nosniff"})
	res := &Response{Status: check.Status(e.Code), Header: hs}
	if x.r.Method != "HEAD" {
		res.Body = check.Body(e)
	}
	return res
}

func (h *Handler) pushAuthorized(r *Request) bool {
	want := "Bearer " + h.cfg.RevokeToken
	return subtle.ConstantTimeCompare([]byte(r.get("Authorization")), []byte(want)) == 1
}

// revocationPush is the body of a push: one revocation, until when.
type revocationPush struct {
	Kind  store.Kind `json:"kind"`
	Value string     `json:"value"`
	Until int64      `json:"until"` // Unix seconds
}

// RevocationPush reports whether a request is for the revocation push
// endpoint (POST to exactly RevocationPath, pushes enabled). Its body is
// read by the Handler itself, after the push token matched, so the runtime
// must not read it ahead.
func (h *Handler) RevocationPush(method, rawURL string) bool {
	if method != "POST" || h.cfg.RevokeToken == "" {
		return false
	}
	_, c, err := check.Path(rawURL)
	return err == nil && c == RevocationPath
}

// MaxRevocationPush is the largest revocation push body: one {kind, value,
// until} object is well under it.
const MaxRevocationPush = 4 << 10

// pushRevocation stores a revocation pushed by the issuer, authorized by
// the KEYLESS_REVOKE_TOKEN secret (compared in constant time). The token
// is checked before the body is touched, and the body is read only up to
// MaxRevocationPush (+1 byte, to tell "too large"): anyone can reach this
// path, so nothing is buffered for them.
func (h *Handler) pushRevocation(ctx context.Context, x *exchange) (*Response, *check.Error) {
	if !h.pushAuthorized(x.r) {
		return nil, &check.Error{Code: check.CodeNoCredentials, Msg: "revocation push needs the issuer's token", Rule: "revocations.auth"}
	}
	tooLarge := &check.Error{Code: check.CodeBodyTooLarge, Msg: "revocation push body too large", Rule: "revocations.body"}
	if x.r.ContentLength > MaxRevocationPush {
		return nil, tooLarge
	}
	var body []byte
	if x.r.ReadBody != nil {
		b, err := x.r.ReadBody(MaxRevocationPush + 1)
		if err != nil {
			return nil, &check.Error{Code: check.CodeInvalidRequest, Msg: "could not read the body", Err: err, Rule: "revocations.body"}
		}
		if len(b) > MaxRevocationPush {
			return nil, tooLarge
		}
		body = b
	}
	var p revocationPush
	if err := json.Unmarshal(body, &p); err != nil || p.Value == "" || p.Until <= 0 {
		return nil, &check.Error{Code: check.CodeInvalidRequest, Msg: "body must be {kind, value, until}", Rule: "revocations.body"}
	}
	switch p.Kind {
	case store.KindLease, store.KindJTI, store.KindSub, store.KindClient, store.KindJKT:
	default:
		return nil, &check.Error{Code: check.CodeInvalidRequest, Msg: "unknown revocation kind", Rule: "revocations.kind"}
	}
	if err := h.host.Revoke(ctx, store.Revocation{Kind: p.Kind, Value: p.Value}, time.Unix(p.Until, 0)); err != nil {
		return nil, &check.Error{Code: check.CodeUnavailable, Msg: "revocation store unavailable", Err: err, Rule: "revocations.store"}
	}
	return &Response{Status: 204, Header: [][2]string{{"Cache-Control", "no-store"}}}, nil
}

// revokedCache remembers, per token, when the revocation store last said
// "not revoked", for ttl: the bound on how late a revocation reaches this
// isolate. Zero ttl asks every time.
type revokedCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[[32]byte]time.Time
}

func (c *revokedCache) fresh(k [32]byte, now time.Time) bool {
	if c.ttl <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[k]
	return ok && now.Sub(t) < c.ttl
}

func (c *revokedCache) put(k [32]byte, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= 10000 {
		clear(c.m)
	}
	c.m[k] = now
}
