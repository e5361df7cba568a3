package lease

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/oauth"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// serveRevoke is POST /v1/lease/revoke, RFC 7009 for a public client
// revoking its own lease or renewal token (the browser's logout): form
// token, token_type_hint (ignored: both kinds are searched, RFC 7009
// section 2.1), client_id, and a DPoP proof by the lease's key, which is
// what makes the caller its owner.
//
// Answers (docs/security.md#d5): 200 for success and for an unknown, expired or already-revoked
// token (no oracle); 400 unauthorized_client, the token left valid, when
// it belongs to another client; 400 invalid_dpop_proof, the token left
// valid, when the proof is not by its key. The issuer's /revoke answers
// the same through [Service.RevokeToken].
// Revoking either token revokes the whole lease: every lease of its family
// fails at the proxy at once, and renewal stops.
//
// https://www.rfc-editor.org/rfc/rfc7009#section-2
func (s *Service) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if err := s.revokeHTTP(w, r); err != nil {
		s.render(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Service) revokeHTTP(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	f, err := oauth.ReadForm(w, r)
	if err != nil {
		s.deny(ctx, "revoke", err, nil, nil)
		return err
	}
	proof, err := s.verifyProof(ctx, r, PathRevoke)
	if err != nil {
		s.deny(ctx, "revoke", err, nil, nil)
		return err
	}
	tok, clientID := f.Get("token"), f.Get("client_id")
	if tok == "" || clientID == "" {
		err := oauthErr(CodeInvalidRequest, "token and client_id are required")
		s.deny(ctx, "revoke", err, nil, proof)
		return err
	}
	_, err = s.revokeOwn(ctx, tok, clientID, proof)
	return err
}

// RevokeToken implements [oauth.Revoker]: the issuer's RFC 7009
// endpoint hands every token to the vending service first, which takes
// renewal tokens (by their prefix) and leases (by their signature and
// lease id), as the token endpoint routes renewal to it.
func (s *Service) RevokeToken(ctx context.Context, req *oauth.RevokeRequest) (bool, error) {
	if !strings.HasPrefix(req.Token, RenewalPrefix) && strings.Count(req.Token, ".") != 2 {
		return false, nil
	}
	return s.revokeOwn(ctx, req.Token, req.Client.ID, req.Proof)
}

// revokeOwn revokes a lease or renewal token for its owner: the app it
// was issued to, proving the key it is bound to. handled is false for a
// JWT that is not a lease (the issuer's own access tokens).
//
// Refusals leave the token valid: another app's token is 400
// unauthorized_client (RFC 7009 section 2.1), a missing proof or one by
// another key 400 invalid_dpop_proof.
func (s *Service) revokeOwn(ctx context.Context, tok, clientID string, proof *dpop.Proof) (handled bool, err error) {
	renewal := strings.HasPrefix(tok, RenewalPrefix)
	g, until, err := s.find(ctx, tok)
	if err != nil {
		return true, err
	}
	if g == nil {
		return renewal, nil // unknown, expired, not ours: 200, as on success
	}
	if g.ClientID != clientID {
		err := oauthErr(CodeUnauthorizedClient, "the token belongs to another client")
		s.deny(ctx, "revoke", err, &denyInfo{Family: g}, proof)
		return true, err
	}
	if err := oauth.RequireProofOfKey(g.JKT, proof); err != nil {
		s.deny(ctx, "revoke", err, &denyInfo{Family: g}, proof)
		return true, err
	}
	r := store.Revocation{Kind: store.KindLease, Value: g.LeaseID}
	already, err := s.o.Revocations.AnyRevoked(ctx, r)
	if err != nil {
		return true, unavailable(err)
	}
	if already {
		// Sign-out revokes the renewal token and then the lease, both
		// naming one lease: one revocation, one audit line.
		return true, nil
	}
	if err := s.o.Revocations.Revoke(ctx, r, until); err != nil {
		return true, unavailable(err)
	}
	kind := "lease"
	if renewal {
		kind = "renewal_token"
	}
	s.audit.LogAttrs(ctx, slogInfo, "lease revoked", append(g.attrs(),
		attr("event", "lease.revoke"), attr("by", "owner"), attr("token", kind))...)
	return true, nil
}

// find resolves a lease or renewal token to its family and how long a
// revocation of it must be remembered; nil when it is not a live token of
// this service.
func (s *Service) find(ctx context.Context, tok string) (*Family, time.Time, error) {
	now := s.now()
	if strings.HasPrefix(tok, RenewalPrefix) {
		rec, err := s.renewals.Get(ctx, hashToken(tok))
		if err != nil {
			return nil, time.Time{}, unavailable(err)
		}
		if rec == nil || !now.Before(rec.Family.FamilyExpiry) {
			return nil, time.Time{}, nil
		}
		return &rec.Family, rec.Family.FamilyExpiry.Add(token.MaxTTL), nil
	}
	c, err := s.verifyLease(ctx, tok)
	if err != nil || c == nil || c.LeaseID == "" {
		return nil, time.Time{}, err
	}
	g := &Family{LeaseID: c.LeaseID, Subject: c.Subject, ClientID: c.ClientID, JKT: c.JKT, Scopes: c.Scope, Preview: c.Preview}
	// The family's limit is not in the lease; remember the revocation as
	// long as any family can live.
	return g, now.Add(s.o.Policy().MaxRenewLimit() + token.MaxTTL), nil
}

// verifyLease verifies a lease this service minted, for any audience it
// may carry; nil when it is not one.
//
// An expired lease still names a family whose renewal token may be alive
// (the browser logs out after its lease lapsed), so expiry is not a reason
// to ignore it: a lease that fails only because it expired is verified
// again at an instant inside its lifetime. Its signature, issuer and
// audience are checked all the same, and only leases young enough for
// their family to be alive are considered.
func (s *Service) verifyLease(ctx context.Context, raw string) (*token.Claims, error) {
	allowed := []string{s.o.Audience}
	for _, a := range s.o.Policy().Apps {
		allowed = append(allowed, a.Resources...)
	}
	now := s.now()
	clocks := []func() time.Time{s.now}
	if exp, ok := peekExpiry(raw); ok && exp.Before(now) && now.Sub(exp) < s.o.Policy().MaxRenewLimit()+token.MaxTTL {
		clocks = append(clocks, func() time.Time { return exp.Add(-time.Second) })
	}
	for _, clock := range clocks {
		for _, aud := range peekAudience(raw) {
			if !slices.Contains(allowed, aud) {
				continue
			}
			v := &token.JWTVerifier{Keys: s.o.Minter.Keys, Issuer: s.o.Minter.Issuer, Audience: aud, Now: clock}
			c, err := v.Verify(ctx, raw)
			if err == nil {
				return c, nil
			}
			if !errors.Is(err, token.ErrInvalidToken) {
				return nil, unavailable(err)
			}
		}
	}
	return nil, nil
}

// peekExpiry reads exp from an unverified JWT payload.
func peekExpiry(raw string) (time.Time, bool) {
	b, ok := peekPayload(raw)
	if !ok {
		return time.Time{}, false
	}
	var p struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(b, &p) != nil || p.Exp <= 0 {
		return time.Time{}, false
	}
	return time.Unix(p.Exp, 0), true
}

// peekPayload decodes a JWT's payload without verifying anything.
func peekPayload(raw string) ([]byte, bool) {
	if len(raw) > token.DefaultMaxSize || strings.Count(raw, ".") != 2 {
		return nil, false
	}
	_, rest, _ := strings.Cut(raw, ".")
	p64, _, _ := strings.Cut(rest, ".")
	b, err := base64.RawURLEncoding.DecodeString(p64)
	return b, err == nil
}

// peekAudience reads aud from an unverified JWT payload, to choose the
// verifier's audience.
func peekAudience(raw string) []string {
	b, ok := peekPayload(raw)
	if !ok {
		return nil
	}
	var p struct {
		Aud json.RawMessage `json:"aud"`
	}
	if json.Unmarshal(b, &p) != nil {
		return nil
	}
	var one string
	if json.Unmarshal(p.Aud, &one) == nil {
		return []string{one}
	}
	var many []string
	json.Unmarshal(p.Aud, &many)
	return many
}

// externalIssuer reports whether name is a configured external issuer.
func (s *Service) externalIssuer(name string) bool {
	for _, is := range s.o.Issuers {
		if is.Federation != nil && is.Name == name {
			return true
		}
	}
	return false
}

// admin wraps an admin endpoint: 404 when there is no admin token, 401
// unless the request carries it (compared in constant time).
func (s *Service) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.o.AdminToken == "" {
			http.NotFound(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.o.AdminToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keyless-admin"`)
			s.render(w, r, &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Msg: "admin token required"})
			return
		}
		h(w, r)
	}
}

// endLogin ends the lease families minted from a revoked login (the
// authorization server calls it, its OnLoginRevoked hook):
// each live one is revoked by lease id, so the proxies refuse its current
// lease at once. Renewal would refuse them anyway (it asks whether the
// login was revoked); this makes the leases already out stop too.
func (s *Service) endLogin(ctx context.Context, family string) error {
	all, err := s.leases.List(ctx, s.now())
	if err != nil {
		return unavailable(err)
	}
	for _, a := range all {
		if a.LoginFamily != family {
			continue
		}
		until := a.ExpiresAt
		if a.RenewableUntil.After(until) {
			until = a.RenewableUntil
		}
		if err := s.o.Revocations.Revoke(ctx, store.Revocation{Kind: store.KindLease, Value: a.LeaseID}, until.Add(token.MaxTTL)); err != nil {
			return unavailable(err)
		}
		s.audit.LogAttrs(ctx, slogInfo, "lease revoked", attr("event", "lease.revoke"), attr("by", "login_revoked"),
			attr("lease_id", a.LeaseID), attr("sub", a.Subject), attr("client_id", a.ClientID), attr("login_family", family))
	}
	return nil
}
