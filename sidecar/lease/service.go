// Package lease is keyless's token vending service: it turns a user's
// proof of login (a subject token from the embedded authorization server or
// an external OIDC issuer) into a lease, a short-lived, DPoP-bound RFC 9068
// capability token for one app, as the policy ([policy.Policy]) allows.
// The sidecar proxy accepts only leases (docs/security.md#d14).
//
// # Endpoints
//
// [Service.Handler] serves, under the public BaseURL:
//
//	POST /v1/lease          JSON {subject_token, client_id, scope, ttl, resource}
//	POST /v1/lease/renew    JSON {renewal_token, ttl}: rotate the renewal token
//	POST /v1/lease/revoke   form {token, token_type_hint, client_id} (RFC 7009)
//
// each with a DPoP proof whose htu is BaseURL + path. The same vending
// operation is an RFC 8693 token exchange at the authorization server's
// token endpoint: register [Service.ExchangeGrant] for
// [oauth.GrantTokenExchange]. [Service.AdminHandler] revokes by lease,
// subject, app or key thumbprint (`keyless revoke`) and lists the active
// leases, which the service records in Options.Leases (`keyless leases`).
//
// # Binding
//
// A lease's cnf.jkt is always the thumbprint of the key that signed the
// DPoP proof of the request that minted it. A request naming another key
// (dpop_jkt, jkt, cnf) or another subject (subject, sub, actor_token) is
// refused with invalid_request; a DPoP-bound subject token must be bound to
// the proof's key, otherwise the answer is 401 invalid_token with a DPoP
// challenge, as every keyless component answers an access token presented
// with another key (at /v1/lease and at the token endpoint alike; refresh
// tokens and device codes are grants, so a key mismatch there stays
// invalid_grant); a lease is never accepted as a subject token (no TTL
// laundering, invalid_grant).
//
// # Renewal and revocation
//
// A lease comes with an opaque renewal token (stored hashed, bound to the
// lease's key, single use). Renewing rotates it and mints the next lease
// of the same lease id, after the policy is evaluated again, until the
// policy's absolute renewal limit. A used token presented again revokes
// the whole lease. Revocations go to the store the proxy reads, so a
// revoked lease fails there at once.
//
// # Audit
//
// One JSON line per lease, renewal, denial (with the rule that decided)
// and revocation on Options.Audit. Tokens are never logged.
//
// # Wiring
//
// [FromConfig] builds the service from a keyless config (its policy and
// vending sections) beside the embedded authorization server and
// registers the exchange grant; [New] takes every part explicitly.
package lease

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/federation"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// Endpoint paths under BaseURL.
const (
	PathLease  = "/v1/lease"
	PathRenew  = "/v1/lease/renew"
	PathRevoke = "/v1/lease/revoke"
	PathAdmin  = "/admin/v1/lease/revoke" // on the admin listener
)

// NonceSource issues and checks DPoP server nonces (*nonce.Source).
type NonceSource interface {
	dpop.NonceChecker
	Current() string
}

// Options configure a [Service]. Required fields are marked.
type Options struct {
	// Policy returns the policy in force; required. A function, so a
	// reload can swap the policy without restarting the service.
	Policy func() *policy.Policy
	// SharedQuotas, when set, counts the policy's lease quotas in this
	// database instead of in memory: replicas sharing it (keyless serve
	// --db, docs/deployment-ha.md) enforce one quota together.
	SharedQuotas store.KV
	// Minter signs leases; required. Its Issuer is the leases' iss.
	Minter *token.Minter
	// Audience is the aud of a lease that names no resource: the proxy's
	// public URL; required. Apps may allow other resources in the policy.
	Audience string
	// BaseURL is the service's public URL, the base of every htu it
	// expects (never derived from Host, docs/security.md#a3); required.
	BaseURL string
	// Issuers are the subject-token issuers trusted; at least one.
	Issuers []Issuer
	// Revocations is where revocations are recorded and checked; the
	// proxy must read the same store; required.
	Revocations store.Revocations
	// Replay is the DPoP jti cache for proofs sent to this service's own
	// endpoints; required. (The token exchange grant's proof is checked
	// by the authorization server.)
	Replay store.Replay
	// ListRevocations lists the live revocations for operators (keyless
	// revoke --list); nil answers that the store cannot list.
	ListRevocations func(context.Context) ([]store.RevocationEntry, error)
	// Renewals keeps renewal tokens; nil means in memory (lost on
	// restart: clients then log in again).
	Renewals RenewalStore
	// Leases records issued leases for [Service.ListActive] (keyless
	// leases); nil means in memory.
	Leases LeaseIndex
	// Logins is the local authorization server's lineage (login family of
	// an access token, and whether a login was revoked): a lease family
	// records the login it came from, and renewal stops once that login
	// is revoked (docs/revocation.md). Nil when subject tokens come only
	// from other issuers; their families are then tied to the subject
	// token's jti alone.
	Logins Logins
	// Nonce, when set, makes the endpoints require DPoP nonces.
	Nonce NonceSource
	// DPoPAlgs allowed in proofs; nil means dpop.DefaultAlgs.
	DPoPAlgs []string
	// AdminToken authenticates AdminHandler (Bearer); empty disables it.
	AdminToken string
	// Audit receives one JSON line per lease, renewal, denial and
	// revocation; nil discards.
	Audit *slog.Logger
	// Log receives operational errors; nil means Audit.
	Log *slog.Logger
	// Now is the clock; nil means time.Now. Set Minter.Now to the same.
	Now func() time.Time
}

// Logins is what the vending service asks the authorization server about
// logins; the embedded authorization server implements it.
type Logins interface {
	// LoginOf returns the login family of one of the server's access
	// tokens, "" when the jti is unknown.
	LoginOf(ctx context.Context, jti string) (string, error)
	// LoginRevoked reports whether a login family was revoked (an
	// unknown family counts as revoked).
	LoginRevoked(ctx context.Context, family string) (bool, error)
}

// Issuer is a trusted subject-token issuer: keyless's own (Verifier) or
// an external one (Federation).
type Issuer struct {
	// Issuer is the iss value; required, compared exactly.
	Issuer string
	// Verifier verifies the embedded server's tokens (signature, iss,
	// aud, exp): [AuthServer.AccessTokenVerifier]. Exactly one of
	// Verifier and Federation is set.
	Verifier token.Verifier
	// Federation validates an external issuer's ID tokens and JWT access
	// tokens and maps their claims (Name, subject_claim, group_map...).
	Federation *federation.Validator
	// Name is the external issuer's configured name: policy rules name
	// it, leases carry it (claim idp, header X-Keyless-Issuer) and
	// subjects are namespaced by it. Empty for keyless's own issuer;
	// required with Federation.
	Name string
	// RenewPastToken: how long a family minted from this issuer's token
	// may renew past the token's exp (external issuers only; zero: not
	// at all).
	RenewPastToken time.Duration
	// Revoked, when set, is asked too ([AuthServer.Revoked]).
	Revoked func(ctx context.Context, c *token.Claims) (bool, error)
	// AnyClient lets a token issued to one client lease for another app.
	// False (the default): the subject token's client_id must be the
	// leasing app, so one app's login cannot mint another app's lease.
	AnyClient bool
	// IgnoreScope: the token's scope does not bound the lease's (for
	// external issuers whose scopes mean something else). False (the
	// default): a lease scope outside the subject token's scope is
	// invalid_scope (docs/security.md#vending).
	IgnoreScope bool
}

// Service is the vending service. Create it with [New].
type Service struct {
	o        Options
	now      func() time.Time
	audit    *slog.Logger
	log      *slog.Logger
	renewals RenewalStore
	leases   LeaseIndex
	quota    *quotaCounter
}

// New checks opts and returns a Service.
func New(o Options) (*Service, error) {
	var errs []error
	req := func(ok bool, name string) {
		if !ok {
			errs = append(errs, fmt.Errorf("lease: %s is required", name))
		}
	}
	req(o.Policy != nil, "Policy")
	req(o.Minter != nil, "Minter")
	req(o.Audience != "", "Audience")
	req(o.BaseURL != "", "BaseURL")
	req(len(o.Issuers) > 0, "Issuers")
	req(o.Revocations != nil, "Revocations")
	req(o.Replay != nil, "Replay")
	if u, err := url.Parse(o.BaseURL); o.BaseURL != "" && (err != nil || !u.IsAbs() || strings.HasSuffix(o.BaseURL, "/")) {
		errs = append(errs, errors.New("lease: BaseURL must be an absolute URL without a trailing slash"))
	}
	for i, is := range o.Issuers {
		if is.Issuer == "" || (is.Verifier == nil) == (is.Federation == nil) {
			errs = append(errs, fmt.Errorf("lease: Issuers[%d] needs Issuer and one of Verifier and Federation", i))
		}
		if is.Federation != nil && (is.Name == "" || is.Federation.Config().Issuer != is.Issuer) {
			errs = append(errs, fmt.Errorf("lease: Issuers[%d] needs Name and the Federation of the same issuer", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s := &Service{o: o, now: o.Now, audit: o.Audit, log: o.Log, renewals: o.Renewals}
	if s.now == nil {
		s.now = time.Now
	}
	if s.audit == nil {
		s.audit = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if s.log == nil {
		s.log = s.audit
	}
	if s.renewals == nil {
		s.renewals = NewMemRenewals(s.now)
	}
	if s.leases = o.Leases; s.leases == nil {
		s.leases = NewMemLeases()
	}
	s.quota = newQuotaCounter()
	s.quota.kv = o.SharedQuotas
	return s, nil
}

// Handler serves the vending endpoints; the route table, top to bottom.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathLease, s.serveLease)
	mux.HandleFunc("POST "+PathRenew, s.serveRenew)
	mux.HandleFunc("POST "+PathRevoke, s.serveRevoke)
	for _, p := range []string{PathLease, PathRenew, PathRevoke} {
		mux.HandleFunc("OPTIONS "+p, servePreflight)
	}
	return mux
}

// servePreflight answers CORS preflights: the DPoP header forces one.
func servePreflight(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", "Content-Type, DPoP")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// verifyProof checks the request's DPoP proof for the endpoint at path.
// Errors: invalid_dpop_proof or use_dpop_nonce (400, with a fresh
// DPoP-Nonce), or 503 when the replay store cannot answer.
//
// https://www.rfc-editor.org/rfc/rfc9449#section-4.3
func (s *Service) verifyProof(ctx context.Context, r *http.Request, path string) (*dpop.Proof, error) {
	raw, err := dpop.SingleProof(r.Header.Values("DPoP"))
	if err == nil {
		opts := dpop.VerifyOptions{Now: s.now, Replay: s.o.Replay, Algs: s.o.DPoPAlgs}
		if s.o.Nonce != nil {
			opts.Nonce = s.o.Nonce
		}
		var p *dpop.Proof
		p, err = dpop.Verify(ctx, raw, dpop.Request{Method: http.MethodPost, URL: s.o.BaseURL + path}, opts)
		if err == nil {
			return p, nil
		}
	}
	var ce *dpop.CheckError
	if !errors.As(err, &ce) {
		return nil, unavailable(err)
	}
	e := &Error{Status: http.StatusBadRequest, Code: ce.Code(), Msg: ce.Description(), Err: err}
	if ce.Code() == dpop.CodeUseNonce && s.o.Nonce != nil {
		e.Header = http.Header{"Dpop-Nonce": {s.o.Nonce.Current()}}
	}
	if e.Code == dpop.CodeInvalidToken { // no token is bound at these endpoints
		e.Code = CodeInvalidDPoPProof
	}
	return nil, e
}
