package lease

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/federation"
	"github.com/keyless-dev/keyless/sidecar/oauth"
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
//	as.RegisterGrant(oauth.GrantTokenExchange, oauth.GrantFunc(svc.ExchangeGrant))
//
// The renewal token comes back as refresh_token; renew it at
// POST /v1/lease/renew (or route refresh tokens starting with
// [RenewalPrefix] to [Service.RenewGrant]).
//
// https://www.rfc-editor.org/rfc/rfc8693#section-2
func (s *Service) ExchangeGrant(ctx context.Context, tr *oauth.TokenRequest) (*oauth.TokenResponse, error) {
	clientID := tr.Form.Get("client_id")
	if tr.Client != nil {
		clientID = tr.Client.ID
	}
	if tr.Proof == nil {
		err := oauthErr(CodeInvalidDPoPProof, "a DPoP proof is required")
		s.deny(ctx, "exchange", err, nil, nil)
		return nil, asError(err)
	}
	req, err := exchangeRequestFromForm(tr.Form, clientID)
	if err != nil {
		s.deny(ctx, "exchange", err, nil, tr.Proof)
		return nil, asError(err)
	}
	resp, err := s.vend(ctx, req, tr.Proof)
	if err != nil {
		return nil, asError(err)
	}
	return &oauth.TokenResponse{
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
	fail := func(err error, st *subjectToken, d *policy.Decision) (*Response, error) {
		s.deny(ctx, "lease", err, &denyInfo{req: req, subject: st, decision: d}, proof)
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
	st, err := s.subject(ctx, req, proof)
	if err != nil {
		return fail(err, st, nil)
	}
	is := st.is
	aud, err := s.targets(app, req.Targets)
	if err != nil {
		return fail(err, st, nil)
	}
	if !is.IgnoreScope && len(st.Scope) > 0 {
		for _, sc := range req.Scopes {
			if !slices.Contains(st.Scope, sc) {
				return fail(oauthErr(CodeInvalidScope, "a requested scope is not in the subject token's scope"), st, nil)
			}
		}
	}
	d := pol.Evaluate(policy.Request{
		App: req.ClientID, Subject: st.Subject, Groups: st.Groups, Scopes: req.Scopes, TTL: req.TTL,
		Issuer: st.Issuer, IssuerName: st.IdP, Time: now,
	})
	if !d.Allow {
		return fail(denial(d), st, &d)
	}
	if !is.IgnoreScope && len(st.Scope) > 0 && len(req.Scopes) == 0 {
		// Default (read) scopes, narrowed to what the login granted.
		d.Scopes = slices.DeleteFunc(d.Scopes, func(sc string) bool { return !slices.Contains(st.Scope, sc) })
		if len(d.Scopes) == 0 {
			return fail(oauthErr(CodeInvalidScope, "the subject token grants none of the app's default scopes"), st, &d)
		}
	}
	ttl := d.TTL
	var familyExpiry time.Time
	if d.RenewLimit > 0 {
		familyExpiry = now.Add(d.RenewLimit)
	}
	if st.IdP != "" {
		// A lease never outlives the external token it came from, and
		// its family renews only until that token's exp (plus the
		// issuer's renew_past_token): then the client brings a fresh
		// token (docs/identity-providers.md, "Lifetime").
		ttl = min(ttl, st.Expiry.Sub(now).Truncate(time.Second))
		if ttl < time.Second {
			return fail(oauthErr(CodeInvalidGrant, "the subject token expires within a second; get a fresh one from issuer "+st.IdP), st, &d)
		}
		if !familyExpiry.IsZero() {
			familyExpiry = minTime(familyExpiry, st.Expiry.Add(is.RenewPastToken))
			if !familyExpiry.After(now.Add(ttl)) {
				familyExpiry = time.Time{} // nothing left to renew
			}
		}
	}
	if wait, ok, err := s.quota.takeCtx(ctx, req.ClientID, store.SubjectValue(st.IdP, st.Subject), d.Quota, now); err != nil {
		return fail(unavailable(err), st, &d)
	} else if !ok {
		e := &Error{Status: http.StatusTooManyRequests, Code: CodeUnavailable, Msg: "lease quota exceeded",
			Header: http.Header{"Retry-After": {itoa(int64(wait / time.Second))}}}
		return fail(e, st, &d)
	}
	if err := s.useBearerOnce(ctx, st, req.SubjectToken); err != nil {
		return fail(err, st, &d)
	}
	leaseID, err := token.RandomID()
	if err != nil {
		return nil, err
	}
	g := Family{
		LeaseID: leaseID, Subject: st.Subject, IdP: st.IdP, ClientID: req.ClientID, Issuer: st.Issuer,
		JKT: proof.JKT, Scopes: d.Scopes, Audience: aud, Preview: d.Preview, TTL: req.TTL,
		SubjectJTI: st.JTI, Groups: st.Groups, FamilyExpiry: familyExpiry, Started: now,
	}
	// Lineage: a family records the login it came from and ends with it
	// (docs/revocation.md).
	if s.o.Logins != nil && st.IdP == "" && st.Issuer == s.o.Minter.Issuer {
		if g.LoginFamily, err = s.o.Logins.LoginOf(ctx, st.JTI); err != nil {
			return fail(unavailable(err), st, &d)
		}
	}
	resp, err := s.mint(ctx, &g, ttl, now)
	if err != nil {
		return fail(err, st, &d)
	}
	s.record(ctx, &g, resp, now)
	s.audit.LogAttrs(ctx, slogInfo, "lease", append(g.attrs(),
		attr("event", "lease.issue"), attr("rule", d.Rule), attrInt("expires_in", resp.ExpiresIn),
		attrBool("clamped", d.Clamped), attr("token_issuer", st.Issuer))...)
	return resp, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Family is what a lease family keeps: everything needed to mint the next
// lease on renewal.
type Family struct {
	LeaseID string `json:"lease_id"`
	Subject string `json:"sub"`
	// IdP is the external issuer's name ("" for keyless's own): with
	// Subject, the namespaced identity.
	IdP      string        `json:"idp,omitempty"`
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
		JKT: g.JKT, TTL: ttl, LeaseID: g.LeaseID, Preview: g.Preview, IdP: g.IdP,
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

// subjectToken is what a verified subject token says, from keyless's own
// issuer or an external one.
type subjectToken struct {
	is       *Issuer
	Issuer   string // iss
	IdP      string // the external issuer's name; "" for keyless's own
	Subject  string // sub, or the external issuer's subject_claim
	ClientID string
	JTI      string
	JKT      string // cnf.jkt; "" for a bearer token
	Scope    []string
	Groups   []string
	Expiry   time.Time
	IssuedAt time.Time     // iat: watermarks revoke what was issued before them
	Check    string        // the external check that refused the token, for audit
	claims   *token.Claims // keyless's own token's claims
}

// subject verifies the subject token: a trusted issuer's, valid, not a
// lease, not revoked, and bound (if at all) to the proof's key. The
// returned subjectToken is non-nil whenever the issuer is known, for the
// audit line.
func (s *Service) subject(ctx context.Context, req *vendRequest, proof *dpop.Proof) (*subjectToken, error) {
	raw := req.SubjectToken
	iss := peekIssuer(raw)
	var is *Issuer
	for i := range s.o.Issuers {
		if s.o.Issuers[i].Issuer == iss {
			is = &s.o.Issuers[i]
		}
	}
	if is == nil {
		return nil, oauthErr(CodeInvalidGrant, "the subject token's issuer is not trusted")
	}
	if is.Federation != nil {
		return s.externalSubject(ctx, is, req, proof)
	}
	c, err := is.Verifier.Verify(ctx, raw)
	if err != nil {
		if errors.Is(err, token.ErrInvalidToken) {
			return nil, &Error{Status: http.StatusBadRequest, Code: CodeInvalidGrant, Msg: "the subject token is invalid or expired", Err: err}
		}
		return nil, unavailable(err)
	}
	// Groups: a user an upstream IdP signed in on /device (login.oidc)
	// carries the groups it asserted, mapped at sign-in and signed by
	// keyless itself (docs/identity-providers.md).
	st := &subjectToken{is: is, Issuer: c.Issuer, Subject: c.Subject, ClientID: c.ClientID, JTI: c.JTI,
		JKT: c.JKT, Scope: c.Scope, Groups: c.Groups, Expiry: c.Expiry, IssuedAt: c.IssuedAt, claims: c}
	if c.Issuer != is.Issuer {
		return st, oauthErr(CodeInvalidGrant, "the subject token's issuer is not trusted")
	}
	// TTL laundering (docs/security.md#vending): a lease is a
	// capability, never a login; minting from it could extend it forever.
	if c.LeaseID != "" {
		return st, oauthErr(CodeInvalidGrant, "a lease cannot be exchanged for another lease")
	}
	if !is.AnyClient && c.ClientID != req.ClientID {
		return st, oauthErr(CodeInvalidGrant, "the subject token was issued to another client")
	}
	return st, s.checkSubject(ctx, st, proof, req.ClientID)
}

// externalSubject validates an external issuer's token through its
// federation.Validator. Every refusal of the token itself is
// invalid_grant with the validator's description (what is wrong, which
// issuer); an issuer that could not be asked is 503
// temporarily_unavailable with Retry-After (docs/identity-providers.md).
func (s *Service) externalSubject(ctx context.Context, is *Issuer, req *vendRequest, proof *dpop.Proof) (*subjectToken, error) {
	exp := federation.Expect{Type: req.TokenType}
	if !is.AnyClient {
		exp.ClientID = req.ClientID
	}
	id, err := is.Federation.Validate(ctx, req.SubjectToken, exp)
	if err != nil {
		st := &subjectToken{is: is, Issuer: is.Issuer, IdP: is.Name}
		var fe *federation.Error
		if !errors.As(err, &fe) {
			return st, unavailable(err)
		}
		st.Check = fe.Check.String()
		if fe.Retry {
			secs := int64(fe.RetryAfter / time.Second)
			return st, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Msg: fe.Msg, Err: fe,
				Header: http.Header{"Retry-After": {itoa(secs)}}}
		}
		return st, &Error{Status: http.StatusBadRequest, Code: CodeInvalidGrant, Msg: fe.Msg, Err: fe}
	}
	st := &subjectToken{is: is, Issuer: id.IssuerURL, IdP: is.Name, Subject: id.Subject, ClientID: id.ClientID,
		JTI: id.JTI, JKT: id.JKT, Scope: id.Scope, Groups: id.Groups, Expiry: id.Expiry, IssuedAt: id.IssuedAt}
	return st, s.checkSubject(ctx, st, proof, req.ClientID)
}

// checkSubject applies what every subject token must pass once verified:
// not revoked (by jti, or by a subject, app or key watermark set after it
// was issued, docs/revocation.md), bound (if at all) to the proof's key.
// client is the app the lease is for.
func (s *Service) checkSubject(ctx context.Context, st *subjectToken, proof *dpop.Proof, client string) error {
	rs := store.Watermarks(store.SubjectValue(st.IdP, st.Subject), client, st.JKT, st.IssuedAt)
	if st.JTI != "" {
		rs = append(rs, store.Revocation{Kind: store.KindJTI, Value: st.JTI})
	}
	revoked, err := s.o.Revocations.AnyRevoked(ctx, rs...)
	if err == nil && !revoked && st.is.Revoked != nil && st.claims != nil {
		revoked, err = st.is.Revoked(ctx, st.claims)
	}
	if err != nil {
		return unavailable(err)
	}
	if revoked {
		return oauthErr(CodeInvalidGrant, "the subject token was revoked")
	}
	// Nobody binds a lease to someone else's key: a DPoP-bound login
	// token is usable only with its own key. The subject token is a
	// token presented with a proof, so the answer is the one every
	// keyless component gives a proof key that is not the token's
	// cnf.jkt: 401 invalid_token (docs/security.md), for keyless's own
	// tokens and external ones alike.
	//
	// https://www.rfc-editor.org/rfc/rfc9449#section-7.1
	if st.JKT != "" && st.JKT != proof.JKT {
		st.Check = "cnf"
		return s.keyMismatch()
	}
	return nil
}

// useBearerOnce records an external bearer subject token (no cnf.jkt) as
// exchanged, until its exp: a copy of it cannot mint a second lease, for
// this key or another (docs/identity-providers.md, "Binding"). It runs
// last before minting, so a request refused for another reason does not
// burn the token. The record is an atomic set-if-absent in the replay
// store, which replicas share.
func (s *Service) useBearerOnce(ctx context.Context, st *subjectToken, raw string) error {
	if st.IdP == "" || st.JKT != "" {
		return nil
	}
	h := sha256.Sum256([]byte(raw))
	until := st.Expiry.Add(federation.MaxLeeway)
	err := s.o.Replay.Use(ctx, "subject-token:"+st.IdP, base64.RawURLEncoding.EncodeToString(h[:]), until)
	switch {
	case errors.Is(err, dpop.ErrReplay):
		st.Check = "reuse"
		return oauthErr(CodeInvalidGrant, "this bearer subject token was already exchanged; get a fresh token from issuer "+st.IdP)
	case err != nil:
		return unavailable(err)
	}
	return nil
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
