package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/config"
	"github.com/keyless-dev/keyless/sidecar/oauth"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// DB is what the vending service keeps in the keyless database: renewal
// tokens and revocations (*boltstore.DB implements both).
type DB interface {
	store.KV
	store.Revocations
}

// AuthServer is what the vending service needs of the authorization
// server it runs beside (the embedded *authserver.Server implements it):
// a token endpoint to plug its grants into, the issuer it trusts for
// subject tokens, and the signer of leases. Through this interface, not
// the server's type, so the vending service depends only on the protocol
// ([oauth]) and the token format ([token]).
type AuthServer interface {
	oauth.GrantRegistry
	// Issuer is the issuer URL: iss of its tokens and the base of the
	// vending endpoints' URLs.
	Issuer() string
	// AccessTokenVerifier verifies the access tokens it issues.
	AccessTokenVerifier() token.Verifier
	// Revoked reports whether one of its access tokens was revoked.
	Revoked(ctx context.Context, c *token.Claims) (bool, error)
	// Minter signs tokens with its active key: leases are signed by the
	// issuer.
	Minter() *token.Minter
	// AddSweep adds a clean-up to its periodic sweeps: fn deletes what
	// has lapsed and says how many records it deleted.
	AddSweep(fn func(context.Context) (int, error))
	// RegisterRevoker adds the vending service's tokens to its RFC 7009
	// revocation endpoint.
	RegisterRevoker(r oauth.Revoker)
	// OnLoginRevoked calls fn with the login family whenever a login is
	// revoked, so the lease families minted from it end too.
	OnLoginRevoked(fn func(ctx context.Context, family string) error)
	Logins
}

// listRevocations is db's ListRevocations (boltstore has it), or nil.
func listRevocations(db DB) func(context.Context) ([]store.RevocationEntry, error) {
	if l, ok := db.(interface {
		ListRevocations(context.Context) ([]store.RevocationEntry, error)
	}); ok {
		return l.ListRevocations
	}
	return nil
}

// Setup is what a keyless process (`keyless dev`, `keyless serve`) gives
// [FromConfig] to run the vending service beside the embedded
// authorization server.
type Setup struct {
	// File names the config file in error positions.
	File string
	// Config is the loaded configuration: its policy and vending sections.
	Config *config.Config
	// Server is the embedded authorization server: the issuer trusted for
	// subject tokens, the signer of leases, and the token endpoint where
	// the exchange grant is registered.
	Server AuthServer
	// DB keeps renewals and revocations (the proxy must read the same
	// revocations).
	DB DB
	// Audience is the lease aud when the vending section names none: the
	// proxy's public URL (keyless dev: its listen URL).
	Audience string
	// Policy, when set, is the policy in force (a *policy.Holder's Get, to
	// reload on SIGHUP); nil means the config's policy section, read once.
	Policy func() *policy.Policy
	// SandboxPolicy, when the config has no policy section, grants every
	// configured client's scopes to every user (keyless dev only; scopes
	// ending ":read" are read scopes, the others write scopes).
	SandboxPolicy bool
	// SharedQuotas counts lease quotas in DB (replicas on one shared
	// database); false keeps them in memory.
	SharedQuotas bool
	// Replay is the DPoP jti cache for the vending endpoints; nil means
	// in memory (one replica; share a store across replicas).
	Replay store.Replay
	// Nonce, when set, makes the vending endpoints require DPoP nonces.
	Nonce NonceSource
	// AdminToken authenticates AdminHandler (the data dir's admin token).
	AdminToken string
	// Audit receives the audit lines; nil discards.
	Audit *slog.Logger
	// HTTPClient fetches external issuers' discovery and JWKS; nil means
	// a client with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// FromConfig builds the vending service from a keyless config and
// registers the token exchange grant at st.Server's token endpoint. A
// broken policy or vending section is an error naming file:line; the
// caller must not start serving then.
//
// The caller mounts the handlers:
//
//	pub.Handle("/v1/lease", svc.Handler())
//	pub.Handle("/v1/lease/", svc.Handler())
//	adm.Handle("/admin/v1/lease/", svc.AdminHandler())
func FromConfig(st Setup) (*Service, error) {
	if st.Config == nil || st.Server == nil || st.DB == nil {
		return nil, errors.New("lease: Setup needs Config, Server and DB")
	}
	vc, err := DecodeConfig(st.File, &st.Config.Vending)
	if err != nil {
		return nil, err
	}
	var pol *policy.Policy
	switch {
	case st.Policy != nil:
		if pol = st.Policy(); pol == nil {
			return nil, errors.New("lease: Setup.Policy returned no policy")
		}
	case st.Config.Policy.Kind != 0:
		if pol, err = policy.FromNode(st.File, &st.Config.Policy); err != nil {
			return nil, err
		}
	case st.SandboxPolicy:
		if pol, err = SandboxPolicy(st.Config); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s: no policy section: the vending service needs one (see `keyless policy check`)", st.File)
	}
	aud := vc.Audience
	if aud == "" {
		aud = st.Audience
	}
	if aud == "" {
		return nil, fmt.Errorf("%s: vending.audience (the proxy's public URL) is required", st.File)
	}
	now := st.Now
	if now == nil {
		now = time.Now
	}
	replay := st.Replay
	if replay == nil {
		replay = &memstore.Replay{Now: now}
	}
	ext, err := vc.ExternalIssuers(st.HTTPClient, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", st.File, err)
	}
	known := map[string]bool{}
	for _, is := range ext {
		known[is.Name] = true
	}
	for _, n := range pol.Issuers() {
		if !known[n] {
			return nil, fmt.Errorf("%s: a policy rule names issuer %q, which is not in vending.issuers", st.File, n)
		}
	}
	issuers := append([]Issuer{{
		Issuer: st.Server.Issuer(), Verifier: st.Server.AccessTokenVerifier(), Revoked: st.Server.Revoked,
	}}, ext...)
	get := st.Policy
	if get == nil {
		get = func() *policy.Policy { return pol }
	}
	renewals := &KVRenewals{KV: st.DB, Now: now}
	svc, err := New(Options{
		Policy:          get,
		Minter:          st.Server.Minter(),
		Audience:        aud,
		BaseURL:         st.Server.Issuer(),
		Issuers:         issuers,
		Revocations:     st.DB,
		ListRevocations: listRevocations(st.DB),
		Replay:          replay,
		Nonce:           st.Nonce,
		Renewals:        renewals,
		Leases:          &KVLeases{KV: st.DB},
		SharedQuotas:    sharedQuotas(st),
		AdminToken:      st.AdminToken,
		Audit:           st.Audit,
		Now:             now,
	})
	if err != nil {
		return nil, err
	}
	svc.RegisterGrants(st.Server)
	// Renewal tokens of families past their renew limit are deleted by the
	// server's periodic sweep (Server.RunSweeps), with its own records.
	st.Server.AddSweep(func(ctx context.Context) (int, error) { return 0, renewals.Sweep(ctx) })
	return svc, nil
}

// SandboxPolicy is the `keyless dev` policy when the config has none:
// every user may lease every scope of every configured client; scopes
// ending ":read" are read scopes (granted when none are asked for), the
// others write scopes. It goes through the same parser and validation as
// a policy file.
func SandboxPolicy(cfg *config.Config) (*policy.Policy, error) {
	var b strings.Builder
	b.WriteString("apps:\n")
	ids := make([]string, 0, len(cfg.Clients))
	for _, c := range cfg.Clients {
		ids = append(ids, c.ID)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := cfg.Client(id)
		fmt.Fprintf(&b, "  %q:\n    scopes:\n", id)
		for _, s := range c.Scopes {
			kind := "write"
			if strings.HasSuffix(s, ":read") || s == "read" {
				kind = "read"
			}
			fmt.Fprintf(&b, "      %q: %s\n", s, kind)
		}
		fmt.Fprintf(&b, "    rules:\n      - name: sandbox\n        subjects: [\"*\"]\n        write: true\n        scopes: [")
		for i, s := range c.Scopes {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", s)
		}
		b.WriteString("]\n")
	}
	return policy.Parse("sandbox-policy", []byte(b.String()))
}

// RegisterGrants adds the vending service to a token endpoint: the RFC
// 8693 token exchange (login token -> lease), and lease renewal through
// grant_type=refresh_token. Renewal tokens are refresh tokens to a standard
// client; their prefix ([RenewalPrefix]) says this service owns them, and
// every other refresh token still goes to the server's own handler.
// The revocation endpoint hands it leases and renewal tokens the same way
// ([Service.RevokeToken]).
func (s *Service) RegisterGrants(as AuthServer) {
	as.RegisterGrant(oauth.GrantTokenExchange, oauth.GrantFunc(s.ExchangeGrant))
	as.RegisterRevoker(s)
	// Lineage: families record the login they came from and end with it.
	if s.o.Logins == nil {
		s.o.Logins = as
	}
	as.OnLoginRevoked(s.endLogin)
	prev := as.Grant(oauth.GrantRefreshToken)
	as.RegisterGrant(oauth.GrantRefreshToken, oauth.GrantFunc(
		func(ctx context.Context, tr *oauth.TokenRequest) (*oauth.TokenResponse, error) {
			if strings.HasPrefix(tr.Form.Get("refresh_token"), RenewalPrefix) || prev == nil {
				return s.RenewGrant(ctx, tr)
			}
			return prev.ServeGrant(ctx, tr)
		}))
}

// sharedQuotas is the database the quotas are counted in: st.DB when the
// replicas share it (Setup.SharedQuotas), else nil (memory).
func sharedQuotas(st Setup) store.KV {
	if st.SharedQuotas {
		return st.DB
	}
	return nil
}
