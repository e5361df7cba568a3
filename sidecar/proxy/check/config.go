package check

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/internal/strictyaml"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
)

// Config is the proxy's configuration: the `proxy:` section of keyless.yaml,
// or the whole file given to `keyless proxy --config`. Every field has a
// documented default, applied by [Config.WithDefaults]; [Config.Validate]
// reports every problem at once.
type Config struct {
	// PublicURL is the external base URL clients address, e.g.
	// "https://api.example.test". Required. It is the only source of the
	// expected DPoP htu: htu = PublicURL (without a trailing slash) + the raw
	// request path. Host, X-Forwarded-* and absolute-form targets are never
	// used (docs/security.md#a3).
	PublicURL string `yaml:"public_url"`
	// Hosts are aliases of PublicURL's host that requests may name in Host
	// (or :authority, or an absolute-form target): "host" or "host:port".
	// A request naming any other host is refused with 421 Misdirected
	// Request (RFC 9110 section 15.5.20), never forwarded. Empty means
	// PublicURL's host only.
	Hosts []string `yaml:"hosts"`
	// Audience is the aud a lease must carry; empty means PublicURL
	// (docs/security.md#d14).
	Audience string `yaml:"audience"`
	// Upstreams by name.
	Upstreams map[string]Upstream `yaml:"upstreams"`
	// Routes in order: the first route whose path pattern and method match
	// a request decides it. A request no route matches is never forwarded.
	Routes []Route `yaml:"routes"`
	// DPoP proof checks.
	DPoP DPoPConfig `yaml:"dpop"`
	// Token checks.
	Token TokenConfig `yaml:"token"`
	// Headers: names the proxy injects and strips.
	Headers Headers `yaml:"headers"`
	// CORS origins per app (client_id), for browser micro apps.
	CORS CORS `yaml:"cors"`
	// RateLimit is the default limit for routes that set none; zero means
	// no limit.
	RateLimit RateLimit `yaml:"rate_limit"`
	// WebSocket settings.
	WebSocket WebSocketConfig `yaml:"websocket"`
	// Server settings for the listener (timeouts, header size).
	Server ServerConfig `yaml:"server"`
	// StoreTimeout bounds every call the proxy makes to its stores (replay
	// cache, revocations, rate limits, WebSocket tickets): a store that
	// does not answer in time fails the request with 503, fast and closed.
	// Zero means DefaultStoreTimeout.
	StoreTimeout time.Duration `yaml:"store_timeout"`
	// Audit: what to do when audit lines cannot be written.
	Audit AuditConfig `yaml:"audit"`
}

// AuditConfig decides what the proxy does while its audit log fails (a
// full disk, a destination that stopped reading): the failure is always
// counted (keyless_proxy_audit_failures_total), logged on the other
// destination and turns /readyz red.
type AuditConfig struct {
	// OnFailure is AuditRefuse (answer 503 instead of forwarding, so
	// nothing is done unaudited) or AuditContinue (forward anyway).
	// Empty means AuditRefuse.
	OnFailure string `yaml:"on_failure"`
}

// Audit failure modes (AuditConfig.OnFailure).
const (
	AuditRefuse   = "refuse"
	AuditContinue = "continue"
)

// Upstream is one backend.
type Upstream struct {
	// URL of the backend, e.g. "http://127.0.0.1:9000" or
	// "https://api.internal/base". A path is prepended to forwarded paths.
	URL string `yaml:"url"`
	// DialTimeout; zero means 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ResponseHeaderTimeout bounds the wait for the response headers; zero
	// means 30s. When it passes the client gets 504.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// IdleConnTimeout; zero means 90s.
	IdleConnTimeout time.Duration `yaml:"idle_conn_timeout"`
	// MaxIdleConns is the pool of idle keep-alive connections kept to this
	// upstream; zero means 512. Go's default of 2 per host halves
	// throughput under load.
	MaxIdleConns int `yaml:"max_idle_conns"`
	// MaxConns caps the connections open to this upstream at once (a
	// request past it waits for one, within its deadlines); zero means
	// 1024.
	MaxConns int `yaml:"max_conns"`
	// MaxInFlight caps the requests forwarded to this upstream at once;
	// past it the proxy answers 503 with Retry-After at once instead of
	// queueing, so a stalled upstream cannot hold unbounded goroutines and
	// memory. Zero means 1024.
	MaxInFlight int `yaml:"max_in_flight"`
	// TLS for https upstreams: CA bundle and, for mTLS, a client
	// certificate.
	TLS UpstreamTLS `yaml:"tls"`
	// Credential the proxy adds on the app's behalf; nil means none.
	Credential *Credential `yaml:"credential"`
}

// UpstreamTLS configures TLS to an upstream. Empty files mean the system
// roots and no client certificate.
type UpstreamTLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"` // client certificate for mTLS
	KeyFile    string `yaml:"key_file"`  // its private key
	ServerName string `yaml:"server_name"`
}

// Credential is a static secret header the proxy sets on forwarded requests,
// read from a file or an environment variable at start (never from the
// client). Exactly one of ValueFile and ValueEnv is set.
type Credential struct {
	// Header name, e.g. "X-Api-Key" or "Authorization".
	Header string `yaml:"header"`
	// Prefix is prepended to the value, e.g. "Bearer ".
	Prefix    string `yaml:"prefix"`
	ValueFile string `yaml:"value_file"`
	ValueEnv  string `yaml:"value_env"`
}

// Route maps method + path pattern to an upstream and the scopes it needs.
type Route struct {
	// Name for logs and metrics; empty means "METHODS PATH".
	Name string `yaml:"name"`
	// Methods allowed; GET also allows HEAD (RFC 9110 section 9.3.2); "*"
	// allows every standard method. Empty means GET.
	Methods []string `yaml:"methods"`
	// Path pattern on the canonical path: literal segments, "*" for one
	// segment, and a final "**" for zero or more segments ("/admin/**"
	// matches "/admin", "/admin/" and "/admin/x/y", never "/admin.json").
	// The query is never part of matching (docs/security.md#a11).
	Path string `yaml:"path"`
	// Upstream name; required unless every lease on this route is preview.
	Upstream string `yaml:"upstream"`
	// Scopes the lease must all hold; required unless Anonymous.
	Scopes []string `yaml:"scopes"`
	// Anonymous routes are forwarded without the caller's credentials or
	// identity, and without the upstream's credential unless
	// SendCredential says otherwise.
	Anonymous bool `yaml:"anonymous"`
	// SendCredential decides whether the upstream's credential
	// (Upstream.Credential) is added to requests forwarded on this route.
	// Nil means yes on authenticated routes and no on anonymous ones, so a
	// public route never lends the app's secret to anonymous callers.
	SendCredential *bool `yaml:"send_credential"`
	// StripPrefix is removed from the path before forwarding ("/api" turns
	// "/api/v1/x" into "/v1/x"). The proof's htu still uses the full path.
	StripPrefix string `yaml:"strip_prefix"`
	// WebSocket allows `Upgrade: websocket` on this route (GET only).
	WebSocket bool `yaml:"websocket"`
	// Redact lists JSON fields removed from responses: dotted paths,
	// "*" for any member; arrays are traversed ("items.email").
	Redact []string `yaml:"redact"`
	// RateLimit overrides Config.RateLimit for this route.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// MaxBodyBytes caps the request body; zero means 1 MiB, negative means
	// no body at all.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxResponseBytes caps a response that is redacted; zero means 10 MiB.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// ContentTypes allowed for request bodies (media types, no
	// parameters); empty allows any.
	ContentTypes []string `yaml:"content_types"`
	// UpstreamIdleTimeout bounds the silence of the upstream once it has
	// sent its response headers: when no body bytes arrive for this long,
	// the response is cut (the client sees it end early) and the
	// upstream request canceled. Zero means 30s; negative means no limit
	// (long-polling or event streams that idle longer). WebSocket tunnels
	// are bounded by their lease instead.
	UpstreamIdleTimeout time.Duration `yaml:"upstream_idle_timeout"`
	// AllowCookies forwards the Cookie header; by default it is stripped.
	AllowCookies bool `yaml:"allow_cookies"`
	// Preview is the example response given to preview-mode leases, which
	// are never forwarded; nil answers them 501.
	Preview *Preview `yaml:"preview"`
}

// SendsCredential reports whether requests on r carry the upstream's
// credential: SendCredential when set, else only on authenticated routes.
func (r Route) SendsCredential() bool {
	if r.SendCredential != nil {
		return *r.SendCredential
	}
	return !r.Anonymous
}

// Preview is a canned response.
type Preview struct {
	Status      int    `yaml:"status"`       // zero means 200
	ContentType string `yaml:"content_type"` // empty means application/json
	Body        string `yaml:"body"`
}

// RateLimit holds token-bucket limits per app (client_id) and per subject.
// A zero Limit is no limit.
type RateLimit struct {
	PerApp     ratelimit.Limit `yaml:"per_app"`
	PerSubject ratelimit.Limit `yaml:"per_subject"`
}

// DPoPConfig configures proof verification.
type DPoPConfig struct {
	// Algs allowed; empty means dpop.DefaultAlgs (ES256, Ed25519, EdDSA).
	Algs []string `yaml:"algs"`
	// MaxAge of a proof's iat; zero means 60s.
	MaxAge time.Duration `yaml:"max_age"`
	// FutureSkew allowed for iat; zero means 5s.
	FutureSkew time.Duration `yaml:"future_skew"`
	// Nonce: server nonces (RFC 9449 section 8); off by default.
	Nonce NonceConfig `yaml:"nonce"`
	// ReplayPerKey bounds the live replay-cache entries of one key
	// thumbprint (per replica): a key past it gets 429, checked before its
	// proof's signature, and cannot fill the cache for others. Zero means
	// derived from the routes' per-subject rate limits (20/s for a route
	// without one) times MaxAge + FutureSkew, plus the bursts; negative
	// means no bound.
	ReplayPerKey int `yaml:"replay_per_key"`
}

// NonceConfig turns on server nonces.
type NonceConfig struct {
	Enabled bool `yaml:"enabled"`
	// Rotate is how often the nonce changes; the current and the previous
	// are accepted. Zero means 5m.
	Rotate time.Duration `yaml:"rotate"`
	// KeyFile holds the HMAC key (at least 32 bytes) shared by replicas;
	// empty means a random key per process (one replica only).
	KeyFile string `yaml:"key_file"`
}

// TokenConfig configures lease checks. Issuer and JWKSURL build the
// verifier when Options.Tokens is nil (`keyless proxy`); an embedding
// process that verifies with its own key set passes Options.Tokens instead.
type TokenConfig struct {
	// Issuer is the iss leases must carry (the vending service's issuer).
	Issuer string `yaml:"issuer"`
	// JWKSURL is the issuer's JWK Set; keys are cached, refetched on an
	// unknown kid at most once per 30s.
	JWKSURL string `yaml:"jwks_url"`
	// Leeway for exp and nbf; zero means 30s.
	Leeway time.Duration `yaml:"leeway"`
	// CacheEntries bounds the cache of verified tokens (by SHA-256), so a
	// request pays for one signature check (the proof's); zero means
	// 10000, negative disables the cache.
	CacheEntries int `yaml:"cache_entries"`
}

// Headers names the headers the proxy owns.
type Headers struct {
	// Prefix is the proxy's namespace: every inbound header starting with
	// it, in any spelling ("X_Keyless_Sub" too), is stripped. Zero means
	// "X-Keyless-".
	Prefix string `yaml:"prefix"`
	// Identity headers injected on forwarded requests; empty means
	// X-Keyless-Sub, X-Keyless-Client, X-Keyless-Scope, X-Keyless-Lease,
	// X-Keyless-Issuer (the external issuer's name; not sent for
	// keyless's own users).
	Subject string `yaml:"subject"`
	Client  string `yaml:"client"`
	Scope   string `yaml:"scope"`
	Lease   string `yaml:"lease"`
	Issuer  string `yaml:"issuer"`
	// Scrub lists client headers removed before forwarding, e.g.
	// User-Agent, Referer. Empty means none.
	Scrub []string `yaml:"scrub"`
	// StripResponse lists upstream response headers removed; they are
	// added to the defaults (Server, X-Powered-By, X-AspNet-Version,
	// X-AspNetMvc-Version, X-Runtime, X-Backend-Server, Via).
	StripResponse []string `yaml:"strip_response"`
}

// CORS lists the origins each app (client_id) may call from.
type CORS struct {
	Apps map[string][]string `yaml:"apps"`
	// MaxAge for preflight caching; zero means 10m.
	MaxAge time.Duration `yaml:"max_age"`
}

// WebSocketConfig configures upgrades.
type WebSocketConfig struct {
	// TicketPath is where browsers POST for a single-use ticket
	// (docs/security.md#d10); empty means "/.keyless/ws-ticket".
	TicketPath string `yaml:"ticket_path"`
	// TicketParam is the query parameter carrying the ticket on the
	// upgrade; empty means "keyless_ticket". It is removed before
	// forwarding.
	TicketParam string `yaml:"ticket_param"`
	// TicketTTL; zero means 30s.
	TicketTTL time.Duration `yaml:"ticket_ttl"`
	// TicketsPerSubject bounds the tickets one subject (of one app) may
	// hold issued within TicketTTL, per replica; past it the ticket
	// endpoint answers 429 with Retry-After. Zero means 10.
	TicketsPerSubject int `yaml:"tickets_per_subject"`
	// TicketRate limits ticket requests per subject (of one app), like a
	// route's rate_limit.per_subject. Zero means 1 per second, burst 10.
	TicketRate ratelimit.Limit `yaml:"ticket_rate"`
	// CheckInterval is how often an open socket's lease is checked for
	// expiry and revocation; zero means 250ms.
	CheckInterval time.Duration `yaml:"check_interval"`
}

// ServerConfig configures the listener.
type ServerConfig struct {
	// Listen address; empty means ":8080".
	Listen string `yaml:"listen"`
	// AdminListen serves /metrics, /healthz and /readyz; empty means
	// "127.0.0.1:9090", "-" disables it.
	AdminListen string `yaml:"admin_listen"`
	// TLSCertFile and TLSKeyFile serve HTTPS when both are set.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// ReadHeaderTimeout; zero means 5s (slowloris).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout for the whole request; zero means 60s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout; zero means 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes; zero means 64 KiB. Larger header sections get 431.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConns caps the client connections open at once (Proxy.LimitListener,
	// used by `keyless proxy`); past it new connections wait in the
	// kernel's backlog. Zero means 4096; negative means no cap.
	MaxConns int `yaml:"max_conns"`
	// ShutdownTimeout is how long a stopping proxy waits for requests in
	// flight (open WebSockets included); past it they are cut, each still
	// audited, and the process exits non-zero. Zero means 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Defaults.
const (
	DefaultPrefix           = "X-Keyless-"
	DefaultTicketPath       = "/.keyless/ws-ticket"
	DefaultTicketParam      = "keyless_ticket"
	DefaultMaxBodyBytes     = 1 << 20
	DefaultMaxResponseBytes = 10 << 20
	DefaultStoreTimeout     = 250 * time.Millisecond

	DefaultTicketsPerSubject   = 10
	DefaultMaxClientConns      = 4096
	DefaultMaxUpstreamConns    = 1024
	DefaultMaxInFlight         = 1024
	DefaultUpstreamIdleTimeout = 30 * time.Second
)

// DefaultTicketRate is WebSocketConfig.TicketRate's default.
var DefaultTicketRate = ratelimit.Limit{Rate: 1, Burst: 10}

// LoadConfig reads a YAML file holding a Config. Unknown fields and values
// of the wrong kind are errors in the file's words, with its name and
// line: `proxy.yaml:14: routes[0]: unknown field "scope" (did you mean
// "scopes"?)`.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var c Config
	if err := strictyaml.Decode(path, b, &c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ParseConfig decodes YAML into a Config as LoadConfig does (errors name
// lines, not a file). It does not validate; call WithDefaults and
// Validate.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := strictyaml.Decode("", b, &c); err != nil {
		return Config{}, fmt.Errorf("proxy: config: %w", err)
	}
	return c, nil
}

// DecodeNode decodes the proxy: section of a keyless.yaml (file), keeping
// the file's line numbers in errors ("keyless.yaml:40: proxy.routes[0]:
// ...").
func DecodeNode(file string, n *yaml.Node) (Config, error) {
	var c Config
	if err := strictyaml.DecodeNode(file, n, "proxy", &c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// WithDefaults returns a copy of c with every zero field set to its
// documented default.
func (c Config) WithDefaults() Config {
	if c.Audience == "" {
		c.Audience = strings.TrimSuffix(c.PublicURL, "/")
	}
	if len(c.DPoP.Algs) == 0 {
		c.DPoP.Algs = append([]string(nil), dpop.DefaultAlgs...)
	}
	def(&c.DPoP.MaxAge, dpop.DefaultMaxAge)
	def(&c.DPoP.FutureSkew, dpop.DefaultFutureSkew)
	def(&c.DPoP.Nonce.Rotate, 5*time.Minute)
	def(&c.Token.Leeway, 30*time.Second)
	def(&c.StoreTimeout, DefaultStoreTimeout)
	defs(&c.Audit.OnFailure, AuditRefuse)
	if c.Token.CacheEntries == 0 {
		c.Token.CacheEntries = 10000
	}
	h := &c.Headers
	if h.Prefix == "" {
		h.Prefix = DefaultPrefix
	}
	defs(&h.Subject, "X-Keyless-Sub")
	defs(&h.Client, "X-Keyless-Client")
	defs(&h.Scope, "X-Keyless-Scope")
	defs(&h.Lease, "X-Keyless-Lease")
	defs(&h.Issuer, "X-Keyless-Issuer")
	def(&c.CORS.MaxAge, 10*time.Minute)
	defs(&c.WebSocket.TicketPath, DefaultTicketPath)
	defs(&c.WebSocket.TicketParam, DefaultTicketParam)
	def(&c.WebSocket.TicketTTL, 30*time.Second)
	if c.WebSocket.TicketsPerSubject == 0 {
		c.WebSocket.TicketsPerSubject = DefaultTicketsPerSubject
	}
	if c.WebSocket.TicketRate.IsZero() {
		c.WebSocket.TicketRate = DefaultTicketRate
	}
	def(&c.WebSocket.CheckInterval, 250*time.Millisecond)
	s := &c.Server
	defs(&s.Listen, ":8080")
	defs(&s.AdminListen, "127.0.0.1:9090")
	def(&s.ReadHeaderTimeout, 5*time.Second)
	def(&s.ReadTimeout, 60*time.Second)
	def(&s.IdleTimeout, 120*time.Second)
	def(&s.ShutdownTimeout, 10*time.Second)
	if s.MaxConns == 0 {
		s.MaxConns = DefaultMaxClientConns
	}
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = 64 << 10
	}
	ups := make(map[string]Upstream, len(c.Upstreams))
	for name, u := range c.Upstreams {
		def(&u.DialTimeout, 5*time.Second)
		def(&u.ResponseHeaderTimeout, 30*time.Second)
		def(&u.IdleConnTimeout, 90*time.Second)
		if u.MaxIdleConns == 0 {
			u.MaxIdleConns = 512
		}
		if u.MaxConns == 0 {
			u.MaxConns = DefaultMaxUpstreamConns
		}
		if u.MaxInFlight == 0 {
			u.MaxInFlight = DefaultMaxInFlight
		}
		ups[name] = u
	}
	c.Upstreams = ups
	routes := make([]Route, len(c.Routes))
	for i, r := range c.Routes {
		if len(r.Methods) == 0 {
			r.Methods = []string{"GET"}
		}
		if r.Name == "" {
			r.Name = strings.Join(r.Methods, ",") + " " + r.Path
		}
		if r.MaxBodyBytes == 0 {
			r.MaxBodyBytes = DefaultMaxBodyBytes
		}
		if r.MaxResponseBytes == 0 {
			r.MaxResponseBytes = DefaultMaxResponseBytes
		}
		def(&r.UpstreamIdleTimeout, DefaultUpstreamIdleTimeout)
		if r.RateLimit == nil {
			rl := c.RateLimit
			r.RateLimit = &rl
		}
		routes[i] = r
	}
	c.Routes = routes
	return c
}

func def(d *time.Duration, v time.Duration) {
	if *d == 0 {
		*d = v
	}
}

func defs(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

// standardMethods are the methods the proxy handles; any other gets 405.
var standardMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true,
	"PATCH": true, "DELETE": true, "OPTIONS": true,
}

// StandardMethod reports whether the proxy handles method; any other gets
// 405.
func StandardMethod(method string) bool { return standardMethods[method] }

// Validate reports every problem in c at once. Call it on WithDefaults'
// result.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("proxy: "+format, args...)) }

	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") ||
		u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		bad("public_url %q must be an absolute http(s) URL without userinfo, query or fragment", c.PublicURL)
	} else if _, err := dpop.NormalizeHTU(c.PublicURL); err != nil {
		bad("public_url %q: %v", c.PublicURL, err)
	}
	for _, h := range c.Hosts {
		if !ValidHost(h) {
			bad("hosts: %q must be host or host:port", h)
		}
	}
	if c.Audience == "" {
		bad("audience is empty")
	}
	for _, a := range c.DPoP.Algs {
		ok := false
		for _, s := range dpop.SupportedAlgs {
			ok = ok || s == a
		}
		if !ok {
			bad("dpop.algs: unsupported alg %q", a)
		}
	}
	if c.DPoP.MaxAge < 0 || c.DPoP.FutureSkew < 0 || c.DPoP.Nonce.Rotate < 0 {
		bad("dpop: durations must not be negative")
	}
	if c.Audit.OnFailure != AuditRefuse && c.Audit.OnFailure != AuditContinue {
		bad("audit.on_failure %q: want %s or %s", c.Audit.OnFailure, AuditRefuse, AuditContinue)
	}
	if c.StoreTimeout < 0 {
		bad("store_timeout must not be negative")
	}
	if c.Token.Leeway < 0 || c.Token.Leeway > time.Minute {
		bad("token.leeway must be between 0 and 60s")
	}
	for _, h := range []string{c.Headers.Prefix, c.Headers.Subject, c.Headers.Client, c.Headers.Scope, c.Headers.Lease, c.Headers.Issuer} {
		if !validHeaderName(h) {
			bad("headers: %q is not a valid header name", h)
		}
	}
	for _, h := range []string{c.Headers.Subject, c.Headers.Client, c.Headers.Scope, c.Headers.Lease, c.Headers.Issuer} {
		if !InNamespace(h, c.Headers.Prefix) {
			bad("headers: %q is outside the namespace %q, so a client copy of it would not be stripped", h, c.Headers.Prefix)
		}
	}
	for app, origins := range c.CORS.Apps {
		for _, o := range origins {
			if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || o != u.Scheme+"://"+u.Host {
				bad("cors.apps[%s]: origin %q must be scheme://host[:port]", app, o)
			}
		}
	}
	if err := c.WebSocket.TicketRate.Validate(); err != nil {
		bad("websocket.ticket_rate: %v", err)
	}
	if c.WebSocket.TicketsPerSubject < 0 {
		bad("websocket.tickets_per_subject must not be negative")
	}
	if _, err := CanonicalPath(c.WebSocket.TicketPath); err != nil {
		bad("websocket.ticket_path %q: %v", c.WebSocket.TicketPath, err)
	}
	for name, u := range c.Upstreams {
		pu, err := url.Parse(u.URL)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.User != nil || pu.RawQuery != "" {
			bad("upstreams[%s]: url %q must be an absolute http(s) URL without userinfo or query", name, u.URL)
		}
		if u.MaxConns < 0 || u.MaxInFlight < 0 || u.MaxIdleConns < 0 {
			bad("upstreams[%s]: max_conns, max_in_flight and max_idle_conns must not be negative", name)
		}
		if (u.TLS.CertFile == "") != (u.TLS.KeyFile == "") {
			bad("upstreams[%s]: tls.cert_file and tls.key_file go together", name)
		}
		if cr := u.Credential; cr != nil {
			if !validHeaderName(cr.Header) {
				bad("upstreams[%s]: credential.header %q is not a valid header name", name, cr.Header)
			}
			if (cr.ValueFile == "") == (cr.ValueEnv == "") {
				bad("upstreams[%s]: credential needs exactly one of value_file and value_env", name)
			}
		}
	}
	if len(c.Routes) == 0 {
		bad("no routes")
	}
	for i, r := range c.Routes {
		where := fmt.Sprintf("routes[%d] (%s)", i, r.Name)
		if _, err := CompilePattern(r.Path); err != nil {
			bad("%s: %v", where, err)
		}
		for _, m := range r.Methods {
			if m != "*" && !standardMethods[m] {
				bad("%s: method %q not supported", where, m)
			}
		}
		if r.Upstream == "" && r.Preview == nil {
			bad("%s: upstream is required", where)
		} else if _, ok := c.Upstreams[r.Upstream]; r.Upstream != "" && !ok {
			bad("%s: unknown upstream %q", where, r.Upstream)
		}
		if r.Anonymous && len(r.Scopes) > 0 {
			bad("%s: an anonymous route cannot require scopes", where)
		}
		if !r.Anonymous && len(r.Scopes) == 0 {
			bad("%s: scopes are required (or set anonymous: true)", where)
		}
		for _, s := range r.Scopes {
			if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
				bad("%s: invalid scope %q", where, s)
			}
		}
		if r.StripPrefix != "" {
			lit := LiteralPrefix(r.Path)
			if !strings.HasPrefix(r.StripPrefix, "/") || strings.HasSuffix(r.StripPrefix, "/") ||
				!(lit == r.StripPrefix || strings.HasPrefix(lit, r.StripPrefix+"/")) {
				bad("%s: strip_prefix %q must be a whole-segment prefix of the path's literal part", where, r.StripPrefix)
			}
		}
		if r.WebSocket && (r.Anonymous || len(r.Methods) != 1 || r.Methods[0] != "GET") {
			bad("%s: websocket routes must be GET only and not anonymous", where)
		}
		if r.RateLimit != nil {
			for _, l := range []ratelimit.Limit{r.RateLimit.PerApp, r.RateLimit.PerSubject} {
				if err := l.Validate(); err != nil {
					bad("%s: rate_limit: %v", where, err)
				}
			}
		}
		for _, f := range r.Redact {
			if f == "" || strings.Contains(f, "..") || strings.HasPrefix(f, ".") || strings.HasSuffix(f, ".") {
				bad("%s: redact field %q is not a dotted path", where, f)
			}
		}
		for _, ct := range r.ContentTypes {
			if ct == "" || strings.ContainsAny(ct, "; ") {
				bad("%s: content type %q must be a bare media type", where, ct)
			}
		}
		if r.Preview != nil && r.Preview.Status != 0 && (r.Preview.Status < 200 || r.Preview.Status > 599) {
			bad("%s: preview.status %d", where, r.Preview.Status)
		}
	}
	return errors.Join(errs...)
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
