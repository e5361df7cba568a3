package lease

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"log/slog"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/oauth"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// RenewalPrefix starts every renewal token, so a token endpoint can tell
// one from its own refresh tokens and route it to [Service.RenewGrant].
const RenewalPrefix = "klr_"

// newRenewalToken returns an opaque 256-bit token and its storage hash.
func newRenewalToken() (tok, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	tok = RenewalPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return tok, hashToken(tok), nil
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// serveRenew is POST /v1/lease/renew: JSON {"renewal_token": "...",
// "ttl": 600} with a DPoP proof by the lease's key.
func (s *Service) serveRenew(w http.ResponseWriter, r *http.Request) {
	resp, err := s.renewHTTP(w, r)
	if err != nil {
		s.render(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Service) renewHTTP(w http.ResponseWriter, r *http.Request) (*Response, error) {
	m, proof, err := s.readProved(w, r, "renew", PathRenew)
	if err != nil {
		return nil, err
	}
	var rt string
	var ttl time.Duration
	for k, v := range m {
		switch k {
		case "renewal_token", "refresh_token":
			if json.Unmarshal(v, &rt) != nil {
				err = oauthErr(CodeInvalidRequest, "renewal_token must be a string")
			}
		case "ttl":
			ttl, err = parseTTL(v)
		default:
			err = oauthErr(CodeInvalidRequest, "unknown parameter")
		}
		if err != nil {
			s.deny(r.Context(), "renew", err, nil, proof)
			return nil, err
		}
	}
	return s.renew(r.Context(), rt, ttl, proof, "")
}

// RenewGrant renews at a token endpoint (grant_type=refresh_token with a
// refresh_token starting with [RenewalPrefix]); the server has verified
// the proof. A token endpoint that owns refresh_token can delegate:
//
//	if strings.HasPrefix(form.Get("refresh_token"), lease.RenewalPrefix) { return svc.RenewGrant(ctx, req) }
func (s *Service) RenewGrant(ctx context.Context, tr *oauth.TokenRequest) (*oauth.TokenResponse, error) {
	if tr.Proof == nil {
		return nil, asError(oauthErr(CodeInvalidDPoPProof, "a DPoP proof is required"))
	}
	clientID := tr.Form.Get("client_id")
	if tr.Client != nil {
		clientID = tr.Client.ID
	}
	resp, err := s.renew(ctx, tr.Form.Get("refresh_token"), 0, tr.Proof, clientID)
	if err != nil {
		return nil, asError(err)
	}
	return &oauth.TokenResponse{
		AccessToken: resp.AccessToken, IssuedTokenType: resp.IssuedTokenType, TokenType: resp.TokenType,
		ExpiresIn: resp.ExpiresIn, RefreshToken: resp.RenewalToken, Scope: resp.Scope,
	}, nil
}

// renew rotates a renewal token and mints the family's next lease. The
// policy is evaluated again: a rule removed since the lease was vended
// stops its renewal. Reuse of a used token revokes the whole family
// (RFC 9700 section 4.14.2).
//
// clientID, when not empty, must be the family's app.
func (s *Service) renew(ctx context.Context, rt string, ttl time.Duration, proof *dpop.Proof, clientID string) (*Response, error) {
	now := s.now()
	fail := func(err error, g *Family, d *policy.Decision) (*Response, error) {
		s.deny(ctx, "renew", err, &denyInfo{Family: g, decision: d}, proof)
		return nil, err
	}
	if rt == "" || !strings.HasPrefix(rt, RenewalPrefix) || len(rt) > 256 {
		return fail(oauthErr(CodeInvalidGrant, "unknown renewal token"), nil, nil)
	}
	h := hashToken(rt)
	rec, err := s.renewals.Get(ctx, h)
	if err != nil {
		return fail(unavailable(err), nil, nil)
	}
	if rec == nil {
		return fail(oauthErr(CodeInvalidGrant, "unknown renewal token"), nil, nil)
	}
	g := rec.Family
	// Only the key the family is bound to may use its token; someone
	// else's proof neither renews nor burns it.
	if proof.JKT != g.JKT {
		return fail(oauthErr(CodeInvalidGrant, "the renewal token is bound to another DPoP key"), &g, nil)
	}
	if clientID != "" && clientID != g.ClientID {
		return fail(oauthErr(CodeInvalidGrant, "the renewal token was issued to another client"), &g, nil)
	}
	if rec.Used {
		return s.reuse(ctx, &g, proof)
	}
	if !now.Before(g.FamilyExpiry) {
		return fail(oauthErr(CodeInvalidGrant, "the lease has reached its renewal limit"), &g, nil)
	}
	revoked, err := s.o.Revocations.AnyRevoked(ctx, append([]store.Revocation{
		{Kind: store.KindLease, Value: g.LeaseID},
		{Kind: store.KindFamily, Value: g.LeaseID},
		{Kind: store.KindJTI, Value: g.SubjectJTI},
		{Kind: store.KindLogin, Value: g.LoginFamily},
	}, store.Watermarks(store.SubjectValue(g.IdP, g.Subject), g.ClientID, g.JKT, g.Started)...)...)
	if err == nil && !revoked && g.LoginFamily != "" && s.o.Logins != nil {
		// The login's own record, not only the revocation entry: that
		// entry lapses with the login's refresh tokens, and a lease family
		// may live longer.
		revoked, err = s.o.Logins.LoginRevoked(ctx, g.LoginFamily)
	}
	if err != nil {
		return fail(unavailable(err), &g, nil)
	}
	if revoked {
		// Make it final: a subject, key or login-token revocation may be
		// remembered for less time than the family lives (the issuer
		// keeps a revoked jti only until the token's exp), and the family
		// must not come back when it lapses.
		if err := s.o.Revocations.Revoke(ctx, store.Revocation{Kind: store.KindLease, Value: g.LeaseID}, g.FamilyExpiry.Add(token.MaxTTL)); err != nil {
			return fail(unavailable(err), &g, nil)
		}
		return fail(oauthErr(CodeInvalidGrant, "the lease was revoked"), &g, nil)
	}
	if ttl == 0 {
		ttl = g.TTL
	}
	d := s.o.Policy().Evaluate(policy.Request{
		App: g.ClientID, Subject: g.Subject, Groups: g.Groups, Scopes: g.Scopes, TTL: ttl, Issuer: g.Issuer, IssuerName: g.IdP, Time: now,
	})
	if !d.Allow {
		return fail(oauthErr(CodeInvalidGrant, "the policy no longer allows this lease"), &g, &d)
	}
	next, nh, err := newRenewalToken()
	if err != nil {
		return nil, err
	}
	if err := s.renewals.Rotate(ctx, h, nh, &Renewal{Family: g}); err != nil {
		if errors.Is(err, ErrRenewalUsed) {
			return s.reuse(ctx, &g, proof)
		}
		return fail(unavailable(err), &g, nil)
	}
	// The family (and its renewal token) is already stored: mint only
	// the lease.
	fam := g
	fam.FamilyExpiry = time.Time{}
	fam.Preview = d.Preview // the app's mode now, not when the family began
	resp, err := s.mint(ctx, &fam, min(d.TTL, g.FamilyExpiry.Sub(now)), now)
	if err != nil {
		return fail(err, &g, &d)
	}
	resp.RenewalToken = next
	s.record(ctx, &g, resp, now)
	s.audit.LogAttrs(ctx, slogInfo, "lease renewed", append(g.attrs(),
		attr("event", "lease.renew"), attr("rule", d.Rule), attrInt("expires_in", resp.ExpiresIn))...)
	return resp, nil
}

// reuse handles a used renewal token presented again: someone holds a
// copy. The whole family is revoked, at the proxy too.
func (s *Service) reuse(ctx context.Context, g *Family, proof *dpop.Proof) (*Response, error) {
	until := g.FamilyExpiry.Add(token.MaxTTL)
	err := s.o.Revocations.Revoke(ctx, store.Revocation{Kind: store.KindLease, Value: g.LeaseID}, until)
	s.audit.LogAttrs(ctx, slog.LevelWarn, "renewal token reused; lease revoked", append(g.attrs(),
		attr("event", "lease.renewal_reuse"))...)
	if err != nil {
		return nil, unavailable(err)
	}
	e := oauthErr(CodeInvalidGrant, "the renewal token was already used; the lease is revoked")
	s.deny(ctx, "renew", e, &denyInfo{Family: g}, proof)
	return nil, e
}
