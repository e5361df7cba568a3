package lease

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/authserver"
	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// Response is a successful lease (or renewal) response: RFC 6749 section
// 5.1 and RFC 8693 section 2.2.1 members, plus the lease id.
type Response struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"` // always DPoP
	// ExpiresIn is the truth: exp - iat of the minted lease, in seconds,
	// after any clamping.
	ExpiresIn int64  `json:"expires_in"`
	Scope     string `json:"scope"`
	LeaseID   string `json:"lease_id"`
	// RenewalToken rotates on every renewal (POST /v1/lease/renew); empty
	// when the app has no renewal.
	RenewalToken string `json:"renewal_token,omitempty"`
	Preview      bool   `json:"preview,omitempty"`
}

// serveLease is POST /v1/lease.
func (s *Service) serveLease(w http.ResponseWriter, r *http.Request) {
	resp, err := s.lease(w, r)
	if err != nil {
		s.render(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Service) lease(w http.ResponseWriter, r *http.Request) (*Response, error) {
	m, proof, err := s.readProved(w, r, "lease", PathLease)
	if err != nil {
		return nil, err
	}
	req, err := leaseRequestFromJSON(m)
	if err != nil {
		s.deny(r.Context(), "lease", err, nil, proof)
		return nil, err
	}
	return s.vend(r.Context(), req, proof)
}

// ExchangeGrant serves the RFC 8693 token exchange grant at the
// authorization server's token endpoint, which has already read the form,
// identified the client and verified the DPoP proof (htu = its token
// endpoint). Register it with
//
//	as.RegisterGrant(authserver.GrantTokenExchange, authserver.GrantFunc(svc.ExchangeGrant))
//
// The renewal token comes back as refresh_token; renew it at
// POST /v1/lease/renew (or route refresh tokens starting with
// [RenewalPrefix] to [Service.RenewGrant]).
//
// https://www.rfc-editor.org/rfc/rfc8693#section-2
func (s *Service) ExchangeGrant(ctx context.Context, tr *authserver.TokenRequest) (*authserver.TokenResponse, error) {
	clientID := tr.Form.Get("client_id")
	if tr.Client != nil {
		clientID = tr.Client.ID
	}
	if tr.Proof == nil {
		err := oauthErr(CodeInvalidDPoPProof, "a DPoP proof is required")
		s.deny(ctx, "exchange", err, nil, nil)
		return nil, toAuthserver(err)
	}
	req, err := exchangeRequestFromForm(tr.Form, clientID)
	if err != nil {
		s.deny(ctx, "exchange", err, nil, tr.Proof)
		return nil, toAuthserver(err)
	}
	resp, err := s.vend(ctx, req, tr.Proof)
	if err != nil {
		return nil, toAuthserver(err)
	}
	return &authserver.TokenResponse{
		AccessToken: resp.AccessToken, IssuedTokenType: resp.IssuedTokenType, TokenType: resp.TokenType,
		ExpiresIn: resp.ExpiresIn, RefreshToken: resp.RenewalToken, Scope: resp.Scope,
	}, nil
}

// vend is the one vending decision, for both entry points. The order:
// request shape, binding and identity overrides (invalid_request), app
// (invalid_client), subject token (invalid_grant), target
// (invalid_target), subject token scope (invalid_scope), policy, quota;
// then mint. Every refusal is audited.
func (s *Service) vend(ctx context.Context, req *vendRequest, proof *dpop.Proof) (*Response, error) {
	now := s.now()
	fail := func(err error, c *token.Claims, d *policy.Decision) (*Response, error) {
		s.deny(ctx, "lease", err, &denyInfo{req: req, claims: c, decision: d}, proof)
		return nil, err
	}
	if req.SubjectToken == "" {
		return fail(oauthErr(CodeInvalidRequest, "subject_token is required"), nil, nil)
	}
	if req.ClientID == "" {
		return fail(oauthErr(CodeInvalidRequest, "client_id is required"), nil, nil)
	}
	// RFC 9449 section 10: a key named in the request must be the proof's.
	for _, v := range req.Binding {
		if v != proof.JKT {
			return fail(oauthErr(CodeInvalidRequest, "the request names a key other than the DPoP proof's"), nil, nil)
		}
	}
	if len(req.Identity) > 0 {
		return fail(oauthErr(CodeInvalidRequest, "the subject is the subject token's; subject and actor parameters are not accepted"), nil, nil)
	}
	pol := s.o.Policy()
	app := pol.App(req.ClientID)
	if app == nil {
		return fail(oauthErr(CodeInvalidClient, "unknown app"), nil, nil)
	}
	claims, is, err := s.subject(ctx, req.SubjectToken, proof)
	if err != nil {
		return fail(err, claims, nil)
	}
	if !is.AnyClient && claims.ClientID != req.ClientID {
		return fail(oauthErr(CodeInvalidGrant, "the subject token was issued to another client"), claims, nil)
	}
	aud, err := s.targets(app, req.Targets)
	if err != nil {
		return fail(err, claims, nil)
	}
	if !is.IgnoreScope && len(claims.Scope) > 0 {
		for _, sc := range req.Scopes {
			if !slices.Contains(claims.Scope, sc) {
				return fail(oauthErr(CodeInvalidScope, "a requested scope is not in the subject token's scope"), claims, nil)
			}
		}
	}
	groups := tokenGroups(req.SubjectToken, is.GroupsClaim)
	d := pol.Evaluate(policy.Request{
		App: req.ClientID, Subject: claims.Subject, Groups: groups, Scopes: req.Scopes, TTL: req.TTL,
		Issuer: claims.Issuer, Time: now,
	})
	if !d.Allow {
		return fail(denial(d), claims, &d)
	}
	if !is.IgnoreScope && len(claims.Scope) > 0 && len(req.Scopes) == 0 {
		// Default (read) scopes, narrowed to what the login granted.
		d.Scopes = slices.DeleteFunc(d.Scopes, func(sc string) bool { return !slices.Contains(claims.Scope, sc) })
		if len(d.Scopes) == 0 {
			return fail(oauthErr(CodeInvalidScope, "the subject token grants none of the app's default scopes"), claims, &d)
		}
	}
	if wait, ok := s.quota.take(req.ClientID, claims.Subject, d.Quota, now); !ok {
		e := &Error{Status: http.StatusTooManyRequests, Code: CodeUnavailable, Msg: "lease quota exceeded",
			Header: http.Header{"Retry-After": {itoa(int64(wait / time.Second))}}}
		return fail(e, claims, &d)
	}
	leaseID, err := token.RandomID()
	if err != nil {
		return nil, err
	}
	g := Family{
		LeaseID: leaseID, Subject: claims.Subject, ClientID: req.ClientID, Issuer: claims.Issuer,
		JKT: proof.JKT, Scopes: d.Scopes, Audience: aud, Preview: d.Preview, TTL: req.TTL,
		SubjectJTI: claims.JTI, Groups: groups, Started: now,
	}
	if d.RenewLimit > 0 {
		g.FamilyExpiry = now.Add(d.RenewLimit)
	}
	if s.o.Logins != nil && claims.Issuer == s.o.Minter.Issuer {
		if g.LoginFamily, err = s.o.Logins.LoginOf(ctx, claims.JTI); err != nil {
			return fail(unavailable(err), claims, &d)
		}
	}
	resp, err := s.mint(ctx, &g, d.TTL, now)
	if err != nil {
		return fail(err, claims, &d)
	}
	s.record(ctx, &g, resp, now)
	s.audit.LogAttrs(ctx, slogInfo, "lease", append(g.attrs(),
		attr("event", "lease.issue"), attr("rule", d.Rule), attrInt("expires_in", resp.ExpiresIn),
		attrBool("clamped", d.Clamped), attr("token_issuer", claims.Issuer))...)
	return resp, nil
}

// Family is what a lease family keeps: everything needed to mint the next
// lease on renewal.
type Family struct {
	LeaseID  string        `json:"lease_id"`
	Subject  string        `json:"sub"`
	ClientID string        `json:"client_id"`
	Issuer   string        `json:"token_iss"`
	JKT      string        `json:"jkt"`
	Scopes   []string      `json:"scope"`
	Audience []string      `json:"aud"`
	Preview  bool          `json:"preview,omitempty"`
	TTL      time.Duration `json:"ttl"` // requested; zero: the cap
	// SubjectJTI is the jti of the login token the family came from:
	// revoking that token (a logout at the issuer) stops renewal.
	SubjectJTI string `json:"subject_jti,omitempty"`
	// LoginFamily is the local issuer's login (refresh-token family) the
	// subject token came from: revoking it, at any time, ends this family.
	// Empty for subject tokens of other issuers.
	LoginFamily string `json:"login_family,omitempty"`
	// Groups are the groups the subject token carried, for the policy's
	// decision on renewal.
	Groups []string `json:"groups,omitempty"`
	// Started is when the family was vended: subject, app and key
	// revocations (watermarks) end families started before their cutoff.
	// Zero (families recorded before it existed) matches any watermark.
	Started time.Time `json:"started,omitzero"`
	// FamilyExpiry is the absolute renewal limit; zero: no renewal.
	FamilyExpiry time.Time `json:"family_exp"`
}

// mint signs a lease for g (TTL never past the family's absolute limit)
// and, when the family may renew, a fresh renewal token.
func (s *Service) mint(ctx context.Context, g *Family, ttl time.Duration, now time.Time) (*Response, error) {
	if !g.FamilyExpiry.IsZero() {
		ttl = min(ttl, g.FamilyExpiry.Sub(now))
	}
	ttl = ttl.Truncate(time.Second)
	if ttl < time.Second {
		return nil, oauthErr(CodeInvalidGrant, "the lease has reached its renewal limit")
	}
	raw, c, err := s.o.Minter.Issue(ctx, token.Spec{
		Subject: g.Subject, Audience: g.Audience, ClientID: g.ClientID, Scope: g.Scopes,
		JKT: g.JKT, TTL: ttl, LeaseID: g.LeaseID, Preview: g.Preview,
	})
	if err != nil {
		return nil, err
	}
	resp := &Response{
		AccessToken: raw, IssuedTokenType: TokenTypeAccessToken, TokenType: "DPoP",
		ExpiresIn: int64(c.Expiry.Sub(c.IssuedAt) / time.Second), Scope: strings.Join(c.Scope, " "),
		LeaseID: g.LeaseID, Preview: g.Preview,
	}
	if !g.FamilyExpiry.IsZero() {
		rt, h, err := newRenewalToken()
		if err != nil {
			return nil, err
		}
		if err := s.renewals.Put(ctx, h, &Renewal{Family: *g}); err != nil {
			return nil, unavailable(err)
		}
		resp.RenewalToken = rt
	}
	return resp, nil
}

// subject verifies the subject token: a trusted issuer's, valid, not a
// lease, not revoked, and bound (if at all) to the proof's key.
func (s *Service) subject(ctx context.Context, raw string, proof *dpop.Proof) (*token.Claims, *Issuer, error) {
	iss := peekIssuer(raw)
	var is *Issuer
	for i := range s.o.Issuers {
		if s.o.Issuers[i].Issuer == iss {
			is = &s.o.Issuers[i]
		}
	}
	if is == nil {
		return nil, nil, oauthErr(CodeInvalidGrant, "the subject token's issuer is not trusted")
	}
	c, err := is.Verifier.Verify(ctx, raw)
	if err != nil {
		if errors.Is(err, token.ErrInvalidToken) {
			return nil, nil, &Error{Status: http.StatusBadRequest, Code: CodeInvalidGrant, Msg: "the subject token is invalid or expired", Err: err}
		}
		return nil, nil, unavailable(err)
	}
	if c.Issuer != is.Issuer {
		return c, nil, oauthErr(CodeInvalidGrant, "the subject token's issuer is not trusted")
	}
	// TTL laundering (SECURITY.md token vending row 2): a lease is a
	// capability, never a login; minting from it could extend it forever.
	if c.LeaseID != "" {
		return c, nil, oauthErr(CodeInvalidGrant, "a lease cannot be exchanged for another lease")
	}
	rs := append([]store.Revocation{{Kind: store.KindJTI, Value: c.JTI}},
		store.Watermarks(c.Subject, c.ClientID, c.JKT, c.IssuedAt)...)
	revoked, err := s.o.Revocations.AnyRevoked(ctx, rs...)
	if err == nil && !revoked && is.Revoked != nil {
		revoked, err = is.Revoked(ctx, c)
	}
	if err != nil {
		return c, nil, unavailable(err)
	}
	if revoked {
		return c, nil, oauthErr(CodeInvalidGrant, "the subject token was revoked")
	}
	// Nobody binds a lease to someone else's key: a DPoP-bound login
	// token is usable only with its own key.
	if c.JKT != "" && c.JKT != proof.JKT {
		return c, nil, oauthErr(CodeInvalidGrant, "the subject token is bound to another DPoP key")
	}
	return c, is, nil
}

// peekIssuer reads iss from a JWT payload without verifying it, only to
// choose the verifier; the verifier then checks iss again.
func peekIssuer(raw string) string {
	b, ok := peekPayload(raw)
	if !ok {
		return ""
	}
	var p struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &p) != nil {
		return ""
	}
	return p.Iss
}

// targets checks resource/audience values against the app's allow-list
// and returns the lease's aud.
//
// https://www.rfc-editor.org/rfc/rfc8707#section-2
func (s *Service) targets(app *policy.App, want []string) ([]string, error) {
	allowed := app.Resources
	if len(allowed) == 0 {
		allowed = []string{s.o.Audience}
	}
	if len(want) == 0 {
		// The service's audience, unless the app's allow-list leaves it
		// out: then the app's first resource.
		if slices.Contains(allowed, s.o.Audience) {
			return []string{s.o.Audience}, nil
		}
		return []string{allowed[0]}, nil
	}
	var aud []string
	for _, t := range want {
		u, err := url.Parse(t)
		if err != nil || !u.IsAbs() || u.Fragment != "" || !slices.Contains(allowed, t) {
			return nil, oauthErr(CodeInvalidTarget, "resource or audience is not allowed for this app")
		}
		if !slices.Contains(aud, t) {
			aud = append(aud, t)
		}
	}
	return aud, nil
}

// denial maps a policy refusal to an OAuth error. Descriptions are fixed
// texts; the rule's name goes to the audit line only.
func denial(d policy.Decision) *Error {
	switch d.Deny {
	case policy.DenyUnknownApp:
		return oauthErr(CodeInvalidClient, "unknown app")
	case policy.DenyScope:
		return oauthErr(CodeInvalidScope, "requested scope is above what the policy grants")
	case policy.DenyTTL:
		return oauthErr(CodeInvalidRequest, "requested ttl is above the policy's cap")
	}
	return oauthErr(CodeAccessDenied, "the policy does not allow this lease")
}

// maxGroups bounds the groups taken from a token.
const maxGroups = 64

// tokenGroups reads the groups claim of a subject token that already
// verified (the caller's order guarantees it): an array of strings; any
// other shape means no groups.
func tokenGroups(raw, claim string) []string {
	if claim == "" {
		return nil
	}
	b, ok := peekPayload(raw)
	if !ok {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	var gs []string
	if json.Unmarshal(m[claim], &gs) != nil || len(gs) > maxGroups {
		return nil
	}
	return slices.DeleteFunc(gs, func(g string) bool { return g == "" || len(g) > 256 })
}

// readProved reads a vending endpoint's JSON body and verifies its DPoP
// proof for path, auditing a refusal under op: the common start of every
// proof-carrying JSON request.
func (s *Service) readProved(w http.ResponseWriter, r *http.Request, op, path string) (map[string]json.RawMessage, *dpop.Proof, error) {
	m, err := readJSONObject(w, r)
	if err == nil {
		var proof *dpop.Proof
		if proof, err = s.verifyProof(r.Context(), r, path); err == nil {
			return m, proof, nil
		}
	}
	s.deny(r.Context(), op, err, nil, nil)
	return nil, nil, err
}
