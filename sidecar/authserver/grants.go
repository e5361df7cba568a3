package authserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// deviceCodeGrant redeems an approved device code, exactly once, for a
// DPoP-bound access token and the first refresh token of a new family.
//
// The checks run in an order that leaks nothing and lets no one but the
// holder of the bound key move the code's state: unknown code, other
// client, already redeemed (invalid_grant); wrong or missing DPoP key
// (invalid_grant, the interval untouched); expired (expired_token); polled
// too fast (slow_down, interval +5 s for this and every later poll); then
// the decision.
//
// https://www.rfc-editor.org/rfc/rfc8628#section-3.4
// https://www.rfc-editor.org/rfc/rfc8628#section-3.5
func (s *Server) deviceCodeGrant(ctx context.Context, req *TokenRequest) (*TokenResponse, error) {
	code := req.Form.Get("device_code")
	if code == "" {
		return nil, oauthErr(CodeInvalidRequest, "device_code is required")
	}
	h := secretHash(code)
	src := sourceKey(req.RemoteIP)
	var g deviceGrant
	var outcome *Error
	var fam family
	famID := ""
	var revokeFam string
	err := s.db.Update(ctx, func(tx store.Tx) error {
		found, err := getJSON(tx, bucketDevice, h, &g)
		if err != nil {
			return err
		}
		switch {
		case !found:
			// Only unknown codes count, against their source: a poll of a
			// known code is never limited here (its interval is).
			if ok, wait := s.pollLimiter.allowIn(tx, src, req.Now); !ok {
				outcome = tooMany(wait)
				return nil
			}
			if err := s.pollLimiter.failIn(tx, src, req.Now); err != nil {
				return err
			}
			outcome = oauthErr(CodeInvalidGrant, "unknown device_code")
			return nil
		case g.ClientID != req.Client.ID:
			outcome = oauthErr(CodeInvalidGrant, "device_code was issued to another client")
			return nil
		case g.Status == statusRedeemed:
			// Reuse after success: refuse, and revoke what the code
			// produced (RFC 6749 section 4.1.2, as ory/fosite does).
			outcome = oauthErr(CodeInvalidGrant, "device_code was already used")
			// A duplicate inside the polling interval (two concurrent
			// polls from one client) is refused without revoking, so the
			// winner's tokens stay good: exactly one 200.
			if req.Now.Sub(g.LastPoll) >= time.Duration(g.Interval)*time.Second {
				revokeFam = g.FamilyID
			}
			return nil
		case req.Proof == nil && g.JKT != "":
			outcome = oauthErr(CodeInvalidGrant, "device_code is bound to a DPoP key; send a proof with it")
			return nil
		case req.Proof == nil:
			outcome = oauthErr(CodeInvalidDPoPProof, "a DPoP proof is required")
			return nil
		case g.JKT != "" && g.JKT != req.Proof.JKT:
			outcome = oauthErr(CodeInvalidGrant, "device_code is bound to another DPoP key")
			return nil
		case !req.Now.Before(g.ExpiresAt):
			outcome = oauthErr(CodeExpiredToken, "device_code expired")
			return nil
		}
		g.JKT = req.Proof.JKT // binds on the first proven poll
		early := !g.LastPoll.IsZero() && req.Now.Sub(g.LastPoll) < time.Duration(g.Interval)*time.Second
		g.LastPoll = req.Now
		switch {
		case early:
			g.Interval += 5
			outcome = oauthErr(CodeSlowDown, "polling too fast")
		case g.Status == statusPending:
			outcome = oauthErr(CodeAuthorizationPending, "")
		case g.Status == statusDenied:
			outcome = oauthErr(CodeAccessDenied, "the user denied the request")
		case g.Status == statusApproved:
			famID, err = randomID()
			if err != nil {
				return err
			}
			g.Status = statusRedeemed
			g.FamilyID = famID
			fam = family{ClientID: g.ClientID, Subject: g.Subject, Groups: g.Groups, Scope: g.Scope, JKT: g.JKT,
				CreatedAt: req.Now, ExpiresAt: req.Now.Add(s.refreshTTL)}
			// The family exists from the moment the code is redeemed, so
			// a revocation can never miss it.
			if err := putJSON(tx, bucketFamily, famID, &fam); err != nil {
				return err
			}
			if err := indexFamily(tx, famID, &fam); err != nil {
				return err
			}
		}
		return putJSON(tx, bucketDevice, h, &g)
	})
	if err != nil {
		return nil, err
	}
	if revokeFam != "" {
		if err := s.revokeFamily(ctx, revokeFam, "device_code_reuse"); err != nil {
			return nil, err
		}
	}
	if outcome != nil {
		return nil, outcome
	}
	return s.issue(ctx, famID, &fam, "", "device_code")
}

// issue mints an access token and a new refresh token in family famID and
// records both durably before answering. old, when set, is the hash of
// the refresh token being rotated; it is marked used in the same
// transaction, so two concurrent refreshes cannot both succeed.
func (s *Server) issue(ctx context.Context, famID string, fam *family, old, grant string) (*TokenResponse, error) {
	now := s.now()
	ttl := s.accessTTL
	// An operator's revocation of the subject, app or key ends logins
	// begun before it; a block (a cutoff in the future) refuses new ones
	// too, and says so (docs/revocation.md).
	revoked, err := s.revocations.AnyRevoked(ctx, store.Watermarks(fam.Subject, fam.ClientID, fam.JKT, fam.CreatedAt)...)
	if err != nil {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Msg: "try again later", Err: err}
	}
	if revoked && grant == "device_code" {
		return nil, oauthErr(CodeAccessDenied, "sign-in is blocked by an operator for this user, app or key")
	}
	if revoked {
		return nil, oauthErr(CodeInvalidGrant, "the login was revoked by an operator")
	}
	raw, claims, err := s.minter.Issue(ctx, token.Spec{
		Subject: fam.Subject, Audience: []string{s.audience}, ClientID: fam.ClientID,
		Scope: fam.Scope, JKT: fam.JKT, TTL: ttl, Groups: fam.Groups,
	})
	if err != nil {
		return nil, err
	}
	rt, err := randomSecret()
	if err != nil {
		return nil, err
	}
	var outcome *Error
	err = s.db.Update(ctx, func(tx store.Tx) error {
		var cur family
		found, err := getJSON(tx, bucketFamily, famID, &cur)
		if err != nil {
			return err
		}
		if !found {
			cur = *fam
		}
		if cur.Revoked {
			outcome = oauthErr(CodeInvalidGrant, "grant was revoked")
			return nil
		}
		if old != "" {
			var o refreshToken
			if ok, err := getJSON(tx, bucketRefresh, old, &o); err != nil || !ok || o.Used {
				outcome = oauthErr(CodeInvalidGrant, "refresh_token was already used")
				return err
			}
			o.Used = true
			if err := putJSON(tx, bucketRefresh, old, &o); err != nil {
				return err
			}
		}
		// The lineage index (jti -> family) lets the vending service
		// record which login a lease family came from; it holds the
		// family's live access tokens only.
		for _, jti := range cur.addAccess(claims.JTI, claims.Expiry, now) {
			if err := tx.Delete(bucketLineage, jti); err != nil {
				return err
			}
		}
		if err := tx.Put(bucketLineage, claims.JTI, []byte(famID)); err != nil {
			return err
		}
		if err := putJSON(tx, bucketFamily, famID, &cur); err != nil {
			return err
		}
		if err := indexRefresh(tx, secretHash(rt), famID, &cur); err != nil {
			return err
		}
		return putJSON(tx, bucketRefresh, secretHash(rt), &refreshToken{FamilyID: famID, CreatedAt: now})
	})
	if err != nil {
		return nil, err
	}
	if outcome != nil {
		return nil, outcome
	}
	event := "token.issue"
	if grant == "refresh_token" {
		event = "token.refresh"
	}
	s.audit.InfoContext(ctx, event, "event", event, "grant", grant, "client_id", fam.ClientID, "sub", fam.Subject,
		"scope", strings.Join(fam.Scope, " "), "jti", claims.JTI, "jkt", fam.JKT, "family", famID)
	return &TokenResponse{
		AccessToken:  raw,
		TokenType:    "DPoP", // RFC 9449 section 5: a DPoP-bound token says so
		ExpiresIn:    int64(claims.Expiry.Sub(now) / time.Second),
		RefreshToken: rt,
		Scope:        strings.Join(fam.Scope, " "),
	}, nil
}

// refreshGrant rotates a refresh token: the presented one becomes used,
// a new one of the same family is returned. Refresh tokens of public
// clients are bound to the DPoP key of their grant (RFC 9449 section 5);
// reuse of a used one revokes the whole family (RFC 9700 section 4.14.2);
// the family's lifetime is absolute.
//
// https://www.rfc-editor.org/rfc/rfc6749#section-6
func (s *Server) refreshGrant(ctx context.Context, req *TokenRequest) (*TokenResponse, error) {
	rt := req.Form.Get("refresh_token")
	if rt == "" {
		return nil, oauthErr(CodeInvalidRequest, "refresh_token is required")
	}
	if req.Proof == nil {
		return nil, oauthErr(CodeInvalidDPoPProof, "a DPoP proof is required")
	}
	h := secretHash(rt)
	var r refreshToken
	var fam family
	var outcome *Error
	reuse := false
	err := s.db.View(ctx, func(tx store.Tx) error {
		found, err := getJSON(tx, bucketRefresh, h, &r)
		if err != nil || !found {
			outcome = oauthErr(CodeInvalidGrant, "unknown refresh_token")
			return err
		}
		if found, err = getJSON(tx, bucketFamily, r.FamilyID, &fam); err != nil || !found {
			outcome = oauthErr(CodeInvalidGrant, "unknown refresh_token")
			return err
		}
		switch {
		case fam.ClientID != req.Client.ID:
			outcome = oauthErr(CodeInvalidGrant, "refresh_token was issued to another client")
		case fam.JKT != req.Proof.JKT:
			// Checked before reuse: someone without the key cannot revoke
			// the family by replaying an old token.
			outcome = oauthErr(CodeInvalidGrant, "refresh_token is bound to another DPoP key")
		case fam.Revoked:
			outcome = oauthErr(CodeInvalidGrant, "grant was revoked")
		case r.Used:
			outcome = oauthErr(CodeInvalidGrant, "refresh_token was already used")
			reuse = true
		case !req.Now.Before(fam.ExpiresAt):
			outcome = oauthErr(CodeInvalidGrant, "refresh_token expired")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if reuse {
		if err := s.revokeFamily(ctx, r.FamilyID, "refresh_token_reuse"); err != nil {
			return nil, err
		}
	}
	if outcome != nil {
		return nil, outcome
	}
	if req.Form.Has("scope") {
		sc, err := narrowScope(fam.Scope, req.Form.Get("scope"))
		if err != nil {
			return nil, err
		}
		fam.Scope = sc // this token only; the family keeps its grant
	}
	resp, err := s.issue(ctx, r.FamilyID, &fam, h, "refresh_token")
	if e, ok := err.(*Error); ok && e.Code == CodeInvalidGrant && strings.Contains(e.Msg, "already used") {
		// Lost a race with a concurrent refresh of the same token: that is
		// reuse too.
		if rerr := s.revokeFamily(ctx, r.FamilyID, "refresh_token_reuse"); rerr != nil {
			return nil, rerr
		}
	}
	return resp, err
}

// narrowScope: a refresh may ask for a subset of the grant (RFC 6749
// section 6), never more.
func narrowScope(granted []string, requested string) ([]string, error) {
	var out []string
	for _, sc := range strings.Split(requested, " ") {
		if sc == "" {
			continue
		}
		if !slices.Contains(granted, sc) {
			return nil, oauthErr(CodeInvalidScope, "scope exceeds the grant")
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, oauthErr(CodeInvalidScope, "scope is empty")
	}
	return out, nil
}

// revokeFamily revokes a grant: its access tokens' jtis first (so the
// vending service and introspection refuse them), then the family, so a
// crash in between leaves the refresh tokens refused at worst one step
// late, never accepted. Durable when it returns.
func (s *Server) revokeFamily(ctx context.Context, famID, reason string) error {
	now := s.now()
	var fam family
	err := s.db.View(ctx, func(tx store.Tx) error {
		_, err := getJSON(tx, bucketFamily, famID, &fam)
		return err
	})
	if err != nil {
		return err
	}
	for _, a := range fam.Access {
		if a.Exp.After(now) {
			if err := s.revocations.Revoke(ctx, store.Revocation{Kind: store.KindJTI, Value: a.JTI}, a.Exp.Add(token.MaxLeeway)); err != nil {
				return err
			}
		}
	}
	if err := s.revocations.Revoke(ctx, store.Revocation{Kind: store.KindLogin, Value: famID}, fam.ExpiresAt.Add(token.MaxTTL)); err != nil {
		return err
	}
	err = s.db.Update(ctx, func(tx store.Tx) error {
		var cur family
		if ok, err := getJSON(tx, bucketFamily, famID, &cur); err != nil || !ok {
			return err
		}
		if cur.Revoked {
			return nil
		}
		cur.Revoked = true
		return putJSON(tx, bucketFamily, famID, &cur)
	})
	if err != nil {
		return err
	}
	s.audit.InfoContext(ctx, "token.revoke", "event", "token.revoke", "kind", "family", "reason", reason,
		"client_id", fam.ClientID, "sub", fam.Subject, "scope", strings.Join(fam.Scope, " "), "jkt", fam.JKT, "family", famID)
	s.grantsMu.RLock()
	hooks := s.loginHooks
	s.grantsMu.RUnlock()
	for _, h := range hooks {
		if err := h(ctx, famID); err != nil {
			return err
		}
	}
	return nil
}

// pollFailures is the budget of unknown device codes per source per
// minute at the token endpoint. Device codes carry 256 bits, so this only
// keeps junk polls cheap; it never limits polls of known codes.
const pollFailures = 20

func tooMany(wait time.Duration) *Error {
	secs := int64(wait/time.Second) + 1
	e := &Error{Status: http.StatusTooManyRequests, Code: CodeInvalidRequest, Msg: "too many failed attempts; retry later"}
	return e.WithRetryAfter(secs)
}

func randomID() (string, error) { return token.RandomID() }

// randomSecret is 256 random bits, base64url: refresh tokens.
func randomSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
