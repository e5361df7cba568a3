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
// Answers (docs/security.md#d5): 200 for success and for an unknown,
// expired or already-revoked token (no oracle); 400 unauthorized_client,
// the token left valid, when it belongs to another client or key.
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
	g, until, err := s.find(ctx, tok)
	if err != nil {
		return err
	}
	if g == nil {
		return nil // unknown, expired, not ours: 200, as on success
	}
	if g.ClientID != clientID || g.JKT != proof.JKT {
		err := oauthErr(CodeUnauthorizedClient, "the token belongs to another client")
		s.deny(ctx, "revoke", err, &denyInfo{Family: g}, proof)
		return err
	}
	if err := s.o.Revocations.Revoke(ctx, store.Revocation{Kind: store.KindLease, Value: g.LeaseID}, until); err != nil {
		return unavailable(err)
	}
	s.audit.LogAttrs(ctx, slogInfo, "lease revoked", append(g.attrs(),
		attr("event", "lease.revoke"), attr("by", "owner"))...)
	return nil
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

// Revoke records an administrative revocation of every lease of a lease
// id (store.KindLease), subject (KindSub), app (KindClient) or key
// thumbprint (KindJKT), and stops their renewal. It is remembered as long
// as any lease family can live, so a subject, app or key stays revoked
// for that long (new leases included). by names the operator for the
// audit line.
func (s *Service) Revoke(ctx context.Context, kind store.Kind, value, by string) error {
	switch kind {
	case store.KindLease, store.KindSub, store.KindClient, store.KindJKT:
	default:
		return oauthErr(CodeInvalidRequest, "kind must be lease, sub, client or jkt")
	}
	if value == "" || len(value) > 512 {
		return oauthErr(CodeInvalidRequest, "value is required")
	}
	until := s.now().Add(s.o.Policy().MaxRenewLimit() + token.MaxTTL)
	if err := s.o.Revocations.Revoke(ctx, store.Revocation{Kind: kind, Value: value}, until); err != nil {
		return unavailable(err)
	}
	s.audit.LogAttrs(ctx, slogInfo, "lease revoked",
		attr("event", "lease.revoke"), attr("by", by), attr("kind", string(kind)), attr("value", value))
	return nil
}

// AdminHandler serves, with "Authorization: Bearer <AdminToken>":
//
//	POST /admin/v1/lease/revoke  JSON {"kind": "lease|sub|client|jkt", "value": "..."}
//	GET  /admin/v1/lease/list    ?client=APP&sub=USER: the active leases
//
// Serve it on the admin (loopback) listener only. With no AdminToken it
// answers 404.
func (s *Service) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathAdminList, s.admin(s.serveList))
	mux.HandleFunc("POST "+PathAdmin, s.admin(func(w http.ResponseWriter, r *http.Request) {
		m, err := readJSONObject(w, r)
		var in struct {
			Kind   string `json:"kind"`
			Value  string `json:"value"`
			Issuer string `json:"issuer"`
		}
		if err == nil {
			b, _ := json.Marshal(m)
			_, hasIssuer := m["issuer"]
			if json.Unmarshal(b, &in) != nil || len(m) != 2 && !(len(m) == 3 && hasIssuer) {
				err = oauthErr(CodeInvalidRequest, "body must be an object with kind and value, and issuer for an external subject")
			}
		}
		if err == nil && in.Issuer != "" {
			// An external subject: namespaced by its issuer's name
			// (docs/identity-providers.md).
			switch {
			case in.Kind != string(store.KindSub):
				err = oauthErr(CodeInvalidRequest, "issuer goes only with kind sub")
			case !s.externalIssuer(in.Issuer):
				err = oauthErr(CodeInvalidRequest, "issuer names no configured external issuer")
			default:
				in.Value = store.SubjectValue(in.Issuer, in.Value)
			}
		}
		if err == nil {
			err = s.Revoke(r.Context(), store.Kind(in.Kind), in.Value, "admin")
		}
		if err != nil {
			s.render(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"revoked": true, "kind": in.Kind})
	}))
	return mux
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
