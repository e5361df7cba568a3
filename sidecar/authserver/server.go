// Package authserver is keyless's embedded authorization server: the OAuth
// 2.0 Device Authorization Grant (RFC 8628) for browser micro apps, with
// DPoP-bound (RFC 9449) access tokens in the RFC 9068 format and rotating,
// key-bound refresh tokens.
//
// # Use
//
// Build a [Server] with [New] and serve [Server.Handler] on the issuer's
// address; serve [Server.AdminHandler] on a loopback-only listener for
// `keyless approve`/`deny` and key rotation. State lives in a [store.KV]
// (boltstore in the data directory), so device codes, refresh-token
// families, revocations and signing keys survive a restart.
//
// # Endpoints
//
//   - POST /device_authorization: RFC 8628 section 3.1
//   - POST /token: grant types device_code and refresh_token; more are added
//     with [Server.RegisterGrant] (the vending service adds RFC 8693 token
//     exchange there)
//   - GET/POST /device: the verification page (RFC 8628 section 3.3)
//   - POST /revoke (RFC 7009), POST /introspect (RFC 7662)
//   - GET /jwks.json, GET /.well-known/oauth-authorization-server (RFC
//     8414) and /.well-known/openid-configuration
//
// Every issuance, approval, denial, refresh and revocation is written to
// the audit logger as one JSON line, with client, subject, scopes, jti and
// key thumbprint, never a token, code or password.
package authserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/oauth"
	"github.com/keyless-dev/keyless/sidecar/oidclogin"
	"github.com/keyless-dev/keyless/sidecar/ratelimit"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/keyquota"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// NonceSource issues and checks DPoP server nonces (RFC 9449 section 8).
type NonceSource interface {
	dpop.NonceChecker
	// Nonce returns the current nonce to send in DPoP-Nonce.
	Nonce() (string, error)
}

// DefaultReplayPerKey is Options.ReplayPerKey's default: far above what a
// client polling every 5 s and refreshing sends within a proof's lifetime
// (RFC 9449 section 11.1).
const DefaultReplayPerKey = 100

// Options configure [New].
type Options struct {
	// Config holds clients, users and issuer settings; required.
	// Config.Issuer.URL is required: it is iss and the base of every
	// endpoint URL, including the htu the DPoP proofs must name (never
	// derived from Host, docs/security.md#a3).
	Config *config.Config
	// DB holds device codes, refresh-token families and keys; required.
	DB store.KV
	// Revocations records revoked jtis and families; required.
	Revocations store.Revocations
	// Replay is the DPoP jti cache for proofs sent to this server; nil
	// means an in-memory one.
	Replay store.Replay
	// ReplayPerKey bounds the live replay entries of one proof key (per
	// process): the token endpoints need no credentials, so without it one
	// client could fill the replay cache for everyone. Past it that key
	// gets 429 with Retry-After. Zero means DefaultReplayPerKey; negative
	// means no bound.
	ReplayPerKey int
	// Nonce, when set, makes the token endpoints require DPoP nonces.
	Nonce NonceSource
	// DPoPAlgs allowed in proofs; nil means dpop.DefaultAlgs.
	DPoPAlgs []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Audit receives the audit log; nil discards it.
	Audit *slog.Logger
	// Log receives operational errors; nil means Audit.
	Log *slog.Logger
	// AdminToken authenticates the admin API; empty disables it.
	AdminToken string
	// VerificationURI is the URL of the /device page as users reach it
	// from their phones, sent as verification_uri (RFC 8628 section 3.2)
	// and so encoded in the QR code. Empty means ISSUER/device. Set it
	// when the issuer URL is one a phone cannot open (keyless dev on
	// 127.0.0.1, reached from the phone at the machine's LAN address or
	// through a tunnel); only the page moves, every other endpoint and the
	// htu of proofs stay under the issuer URL.
	VerificationURI string
	// UserCodeFailures is the budget of wrong user codes or passwords per
	// source (an IPv4 address or an IPv6 /64) per UserCodeWindow; zero
	// means 5. UserCodeWindow zero means the device code lifetime, so a
	// source gets 5 guesses per code lifetime: with 8 characters of a
	// 20-letter alphabet (2^34.6 codes) its chance per live code stays
	// under 2^-32 (RFC 8628 section 5.1; docs/security.md states the bound
	// for many sources). There is no global budget: a valid, live code
	// always works for its owner.
	UserCodeFailures int
	UserCodeWindow   time.Duration
	// SharedBudgets counts the per-source failure budgets (wrong user
	// codes and passwords, unknown device codes) in DB instead of in
	// memory: replicas on one shared database (keyless serve --db,
	// docs/deployment-ha.md) then give a source one budget, not one per
	// replica.
	SharedBudgets bool
	// DeviceAuthorizationLimiter holds the buckets of the
	// DeviceAuthorization limits; nil means this process's memory. Replicas
	// share one (keyless serve --db) so a source gets one allowance.
	DeviceAuthorizationLimiter ratelimit.Limiter
	// DeviceAuthorizationPerSource limits device authorization requests
	// per source (an IPv4 address or an IPv6 /64); zero means a burst of
	// 30, then one every 2 seconds. DeviceAuthorizationPerClient limits
	// them per client over all sources; zero means a burst of 100, then
	// 10 per second. Past either: 429 with Retry-After.
	DeviceAuthorizationPerSource ratelimit.Limit
	DeviceAuthorizationPerClient ratelimit.Limit
	// MaxPendingDeviceCodes caps the unexpired device codes; past it a
	// device authorization answers 503 temporarily_unavailable with
	// Retry-After. Zero means 10,000.
	MaxPendingDeviceCodes int
	// Logins are the upstream OpenID Providers offered on the /device page
	// (login.oidc); each must be built with Issuer URL + [CallbackPath] as
	// its redirect URI. Empty: sandbox users only.
	Logins []*oidclogin.Provider
}

// The token endpoint's grant seam, shared with the services that plug
// into it (see [oauth.GrantRegistry]; *Server implements it).
type (
	GrantHandler  = oauth.GrantHandler
	GrantFunc     = oauth.GrantFunc
	TokenRequest  = oauth.TokenRequest
	TokenResponse = oauth.TokenResponse
)

// Grant types served by default; [GrantTokenExchange] is registered by the
// vending service.
const (
	GrantDeviceCode    = oauth.GrantDeviceCode
	GrantRefreshToken  = oauth.GrantRefreshToken
	GrantTokenExchange = oauth.GrantTokenExchange
)

var _ oauth.GrantRegistry = (*Server)(nil)

// Server is the authorization server.
type Server struct {
	cfg         *config.Config
	issuer      string // public URL, no trailing slash
	basePath    string // issuer URL path, "" at the root
	audience    string
	accessTTL   time.Duration
	refreshTTL  time.Duration
	deviceTTL   time.Duration
	interval    time.Duration
	db          store.KV
	revocations store.Revocations
	replay      store.Replay
	nonce       NonceSource
	algs        []string
	now         func() time.Time
	audit       *slog.Logger
	log         *slog.Logger
	adminToken  string
	verifyURI   string // verification_uri: the /device page as phones reach it
	logins      []*oidclogin.Provider

	keysMu   sync.Mutex // serializes rotation
	keys     *token.KeySet
	minter   *token.Minter
	verifier *token.JWTVerifier

	grantsMu sync.RWMutex
	grants   map[string]GrantHandler
	revokers []Revoker    // guarded by grantsMu
	feed     http.Handler // guarded by grantsMu
	// loginHooks run after a login family is revoked; guarded by grantsMu.
	loginHooks []func(ctx context.Context, family string) error

	authzLimiter                   ratelimit.Limiter // /device_authorization, per source and per client
	authzPerSource, authzPerClient ratelimit.Limit
	maxPending                     int

	sweepsMu sync.Mutex
	sweeps   []func(context.Context) (int, error)

	// trustedProxies may name the client in a forwarding header
	// (issuer.trusted_proxies; see clientIP).
	trustedProxies []netip.Prefix

	codeLimiter  *failureLimiter // wrong user codes and passwords at /device, per source
	pollLimiter  *failureLimiter // unknown device codes at /token, per source
	csrfKey      [32]byte
	crossOrigin  *http.CrossOriginProtection
	dummyBcrypt  []byte
	bcryptDummyO sync.Once
}

// New builds a server: it loads the signing keys from DB, creating and
// persisting the first key on first start.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Config == nil || o.DB == nil || o.Revocations == nil {
		return nil, errors.New("authserver: Config, DB and Revocations are required")
	}
	if err := o.Config.Validate(); err != nil {
		return nil, fmt.Errorf("authserver: %w", err)
	}
	u, err := url.Parse(o.Config.Issuer.URL)
	if o.Config.Issuer.URL == "" || err != nil || !u.IsAbs() {
		return nil, errors.New("authserver: Config.Issuer.URL must be set to the public issuer URL")
	}
	is := o.Config.Issuer
	trusted, err := is.TrustedProxyPrefixes()
	if err != nil {
		return nil, fmt.Errorf("authserver: %w", err)
	}
	s := &Server{
		cfg:         o.Config,
		issuer:      strings.TrimSuffix(is.URL, "/"),
		basePath:    strings.TrimSuffix(u.Path, "/"),
		audience:    is.Audience,
		accessTTL:   is.AccessTokenTTL.Or(config.DefaultAccessTokenTTL),
		refreshTTL:  is.RefreshTokenTTL.Or(config.DefaultRefreshTokenTTL),
		deviceTTL:   is.DeviceCodeTTL.Or(config.DefaultDeviceCodeTTL),
		interval:    is.PollInterval.Or(config.DefaultPollInterval),
		db:          guardedKV{o.DB},
		revocations: guardedRevocations{o.Revocations},
		replay:      o.Replay,
		nonce:       o.Nonce,
		algs:        o.DPoPAlgs,
		now:         o.Now,
		audit:       o.Audit,
		log:         o.Log,
		adminToken:  o.AdminToken,
		verifyURI:   o.VerificationURI,
		logins:      o.Logins,
		grants:      map[string]GrantHandler{},
		crossOrigin: http.NewCrossOriginProtection(),
	}
	s.trustedProxies = trusted
	if s.audience == "" {
		s.audience = s.issuer
	}
	if s.verifyURI == "" {
		s.verifyURI = s.endpoint("/device")
	} else if v, err := url.Parse(s.verifyURI); err != nil || (v.Scheme != "http" && v.Scheme != "https") || v.Host == "" || v.RawQuery != "" || v.Fragment != "" || v.User != nil {
		return nil, errors.New("authserver: VerificationURI must be an http(s) URL without userinfo, query or fragment")
	}
	s.accessTTL = min(s.accessTTL, config.MaxAccessTokenTTL, token.MaxTTL)
	if s.now == nil {
		s.now = time.Now
	}
	if s.audit == nil {
		s.audit = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if s.log == nil {
		s.log = s.audit
	}
	if s.replay == nil {
		s.replay = &memstore.Replay{Now: s.now}
	}
	if n := o.ReplayPerKey; n >= 0 {
		if n == 0 {
			n = DefaultReplayPerKey
		}
		s.replay = keyquota.Replay{Replay: s.replay, Quota: keyquota.New(n, dpop.DefaultMaxAge+dpop.DefaultFutureSkew, s.now)}
	}
	perSource, window := o.UserCodeFailures, o.UserCodeWindow
	if perSource <= 0 {
		perSource = 5
	}
	if window <= 0 {
		window = s.deviceTTL
	}
	s.codeLimiter = newFailureLimiter(perSource, window, defaultMaxSources)
	s.pollLimiter = newFailureLimiter(pollFailures, time.Minute, defaultMaxSources)
	if o.SharedBudgets {
		s.codeLimiter.kv, s.codeLimiter.name = s.db, "code"
		s.pollLimiter.kv, s.pollLimiter.name = s.db, "poll"
	}
	s.authzLimiter = o.DeviceAuthorizationLimiter
	if s.authzLimiter == nil {
		s.authzLimiter = &ratelimit.Memory{MaxKeys: defaultMaxSources}
	}
	s.authzPerSource, s.authzPerClient = o.DeviceAuthorizationPerSource, o.DeviceAuthorizationPerClient
	if s.authzPerSource.IsZero() {
		s.authzPerSource = ratelimit.Limit{Rate: 0.5, Burst: 30}
	}
	if s.authzPerClient.IsZero() {
		s.authzPerClient = ratelimit.Limit{Rate: 10, Burst: 100}
	}
	if err := errors.Join(s.authzPerSource.Validate(), s.authzPerClient.Validate()); err != nil {
		return nil, fmt.Errorf("authserver: %w", err)
	}
	s.maxPending = o.MaxPendingDeviceCodes
	if s.maxPending <= 0 {
		s.maxPending = 10_000
	}
	if _, err := rand.Read(s.csrfKey[:]); err != nil {
		return nil, err
	}
	if err := s.loadKeys(ctx); err != nil {
		return nil, err
	}
	if err := s.indexExisting(ctx); err != nil {
		return nil, fmt.Errorf("authserver: index device codes: %w", err)
	}
	if err := s.indexExistingGrants(ctx); err != nil {
		return nil, fmt.Errorf("authserver: index grants: %w", err)
	}
	s.minter = &token.Minter{Keys: s.keys, Issuer: s.issuer, Now: s.now}
	s.verifier = &token.JWTVerifier{Keys: s.keys, Issuer: s.issuer, Audience: s.audience, Now: s.now}
	s.grants[GrantDeviceCode] = GrantFunc(s.deviceCodeGrant)
	s.grants[GrantRefreshToken] = GrantFunc(s.refreshGrant)
	return s, nil
}

// Grant returns the handler of a grant_type, or nil: a service that
// registers its own handler for a grant the server already has (the
// vending service's lease renewal through refresh_token) wraps it.
func (s *Server) Grant(grantType string) GrantHandler {
	s.grantsMu.Lock()
	defer s.grantsMu.Unlock()
	return s.grants[grantType]
}

// RegisterGrant adds (or replaces) the handler of a grant_type at the token
// endpoint, and lists it in the metadata. The vending service registers
// [GrantTokenExchange] here.
func (s *Server) RegisterGrant(grantType string, h GrantHandler) {
	s.grantsMu.Lock()
	defer s.grantsMu.Unlock()
	s.grants[grantType] = h
}

// Issuer is the issuer URL.
func (s *Server) Issuer() string { return s.issuer }

// Minter signs tokens with the issuer's active key (for grant handlers
// added with RegisterGrant).
func (s *Server) Minter() *token.Minter { return s.minter }

// Keys is the issuer's key set (read-only use: JWKS, verification).
func (s *Server) Keys() *token.KeySet { return s.keys }

// AccessTokenVerifier verifies the access tokens this server issues from
// the device flow (signature, iss, aud, exp); revocation is checked by
// [Server.Revoked].
func (s *Server) AccessTokenVerifier() token.Verifier { return s.verifier }

// Revoked reports whether an access token was revoked: its jti, or its
// subject, client or key before it was issued (watermarks).
func (s *Server) Revoked(ctx context.Context, c *token.Claims) (bool, error) {
	rs := append([]store.Revocation{{Kind: store.KindJTI, Value: c.JTI}},
		store.Watermarks(c.Subject, c.ClientID, c.JKT, c.IssuedAt)...)
	if c.LeaseID != "" {
		rs = append(rs, store.Revocation{Kind: store.KindLease, Value: c.LeaseID})
	}
	return s.revocations.AnyRevoked(ctx, rs...)
}

// endpoint returns the public URL of a path under the issuer.
func (s *Server) endpoint(p string) string { return s.issuer + p }

// Handler returns the public HTTP handler: the route table, read top to
// bottom.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	b := s.basePath
	api := func(h http.HandlerFunc) http.Handler { return cors(h) }
	mux.Handle(b+"/device_authorization", api(s.serveDeviceAuthorization))
	mux.Handle(b+"/token", api(s.serveToken))
	mux.Handle(b+"/revoke", api(s.serveRevoke))
	if feed := s.revocationFeed(); feed != nil {
		mux.Handle(b+PathRevocationFeed, feed)
	}
	mux.Handle(b+"/introspect", http.HandlerFunc(s.serveIntrospect))
	mux.Handle(b+"/jwks.json", api(s.serveJWKS))
	mux.Handle("/.well-known/oauth-authorization-server"+b, api(s.serveMetadata))
	mux.Handle(b+"/.well-known/openid-configuration", api(s.serveMetadata))
	mux.Handle(b+"/device", pageHeaders(http.HandlerFunc(s.serveDevicePage)))
	mux.Handle(b+LoginPath, pageHeaders(http.HandlerFunc(s.serveLogin)))
	mux.Handle(b+CallbackPath, pageHeaders(http.HandlerFunc(s.serveCallback)))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" || r.URL.Path == b || r.URL.Path == b+"/" {
			http.Redirect(w, r, b+"/device", http.StatusFound)
			return
		}
		s.renderError(w, r, &Error{Status: http.StatusNotFound, Code: CodeInvalidRequest, Msg: "no such endpoint"})
	}))
	return recoverer(s.log, mux)
}

// cors lets browser micro apps on any origin call the API endpoints without
// credentials (cookies are never used there), and read the DPoP headers
// (RFC 9449 sections 7.1 and 8, CORS notes).
func cors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", "*")
		hd.Set("Access-Control-Expose-Headers", "WWW-Authenticate, DPoP-Nonce")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			hd.Set("Access-Control-Allow-Methods", "GET, POST")
			hd.Set("Access-Control-Allow-Headers", "Authorization, DPoP, Content-Type")
			hd.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a 500 instead of a dropped connection, and
// logs it.
func recoverer(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": CodeServerError})
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// loadKeys reads the key set, or creates and persists the first one. The
// read and the write are one transaction, so replicas starting together on
// one shared database agree on one set (the second finds the first's).
func (s *Server) loadKeys(ctx context.Context) error {
	var ks *token.KeySet
	created, pruned := false, false
	err := s.db.Update(ctx, func(tx store.Tx) error {
		created, pruned = false, false
		raw := tx.Get(bucketKeys, "set")
		var err error
		if raw != nil {
			if ks, err = token.ParseKeySet(raw); err != nil {
				return err
			}
			if pruned = ks.Prune(s.now()) > 0; !pruned {
				return nil
			}
		} else {
			if ks, err = token.NewKeySet(s.now()); err != nil {
				return err
			}
			created = true
		}
		b, err := ks.MarshalJSON()
		if err != nil {
			return err
		}
		return tx.Put(bucketKeys, "set", b)
	})
	if err != nil {
		return fmt.Errorf("authserver: load keys: %w", err)
	}
	s.keys = ks
	if created {
		s.audit.InfoContext(ctx, "keys.create", "event", "keys.create", "kid", ks.Keys()[0].KID)
	}
	return nil
}

// ReloadKeys adopts the key set stored in the database: replicas sharing
// one database (docs/deployment-ha.md) call it when another one rotated,
// so that all publish and accept the same keys.
func (s *Server) ReloadKeys(ctx context.Context) error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	return s.reloadKeysLocked(ctx)
}

func (s *Server) reloadKeysLocked(ctx context.Context) error {
	var raw []byte
	if err := s.db.View(ctx, func(tx store.Tx) error { raw = tx.Get(bucketKeys, "set"); return nil }); err != nil {
		return fmt.Errorf("authserver: load keys: %w", err)
	}
	if raw == nil {
		return errors.New("authserver: load keys: the stored key set is gone")
	}
	ks, err := token.ParseKeySet(raw)
	if err != nil {
		return fmt.Errorf("authserver: %w", err)
	}
	s.keys.Replace(ks)
	return nil
}

// RotateKeys makes a new signing key active and persists the set; the old
// key stays published until every token it signed has expired. The stored
// set is read, rotated and written in one transaction, so a rotation by
// another replica sharing the database is kept, never overwritten.
func (s *Server) RotateKeys(ctx context.Context) (string, error) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	kid, err := RotateKeysIn(ctx, s.db, s.now())
	if err != nil {
		return "", fmt.Errorf("authserver: save keys: %w", err)
	}
	if err := s.reloadKeysLocked(ctx); err != nil {
		return "", err
	}
	s.audit.InfoContext(ctx, "keys.rotate", "event", "keys.rotate", "kid", kid)
	return kid, nil
}

// RotateKeysIn rotates the signing keys stored in db without a running
// server (`keyless keys rotate` when `keyless dev` is stopped).
func RotateKeysIn(ctx context.Context, db store.KV, now time.Time) (string, error) {
	var kid string
	err := db.Update(ctx, func(tx store.Tx) error {
		raw := tx.Get(bucketKeys, "set")
		var ks *token.KeySet
		var err error
		if raw == nil {
			ks, err = token.NewKeySet(now)
		} else if ks, err = token.ParseKeySet(raw); err == nil {
			ks.Prune(now)
			err = ks.Prepublish(now, now.Add(token.PrePublish), 0)
		}
		if err != nil {
			return err
		}
		b, err := ks.MarshalJSON()
		if err != nil {
			return err
		}
		kid = ks.Keys()[0].KID
		return tx.Put(bucketKeys, "set", b)
	})
	return kid, err
}

// ListKeys reads the key set stored in db.
func ListKeys(ctx context.Context, db store.KV) ([]token.KeyInfo, error) {
	var out []token.KeyInfo
	err := db.View(ctx, func(tx store.Tx) error {
		raw := tx.Get(bucketKeys, "set")
		if raw == nil {
			return nil
		}
		ks, err := token.ParseKeySet(raw)
		if err != nil {
			return err
		}
		out = ks.Keys()
		return nil
	})
	return out, err
}

// VerificationURI is the /device page's URL as sent in verification_uri.
func (s *Server) VerificationURI() string { return s.verifyURI }
