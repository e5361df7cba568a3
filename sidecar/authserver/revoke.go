package authserver

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// serveRevoke is RFC 7009 token revocation. Whatever token_type_hint says,
// both token types are searched (section 2.1). An unknown, garbage or
// already-invalid token is answered 200, exactly like success, so the
// endpoint is no oracle (section 2.2); a token of another client is
// answered 400 unauthorized_client and stays valid (docs/security.md#d5).
// Revoking a refresh token revokes its whole grant, access tokens
// included; revoking an access token revokes that token.
//
// https://www.rfc-editor.org/rfc/rfc7009#section-2
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if err := s.revoke(w, r); err != nil {
		s.renderError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) error {
	form, err := readForm(w, r)
	if err != nil {
		return err
	}
	client, _, err := s.identifyClient(r, form)
	if err != nil {
		return err
	}
	tok := form.Get("token")
	if tok == "" {
		return oauthErr(CodeInvalidRequest, "token is required")
	}
	// A JWT has dots; our refresh tokens never do. The hint only orders the
	// search, and with disjoint formats the order does not matter.
	if strings.Count(tok, ".") == 2 {
		return s.revokeAccessToken(r.Context(), client.ID, tok)
	}
	return s.revokeRefreshToken(r.Context(), client.ID, tok)
}

func (s *Server) revokeRefreshToken(ctx context.Context, clientID, tok string) error {
	var rt refreshToken
	var fam family
	found := false
	err := s.db.View(ctx, func(tx store.Tx) error {
		ok, err := getJSON(tx, bucketRefresh, secretHash(tok), &rt)
		if err != nil || !ok {
			return err
		}
		found, err = getJSON(tx, bucketFamily, rt.FamilyID, &fam)
		return err
	})
	if err != nil || !found || fam.Revoked {
		return err
	}
	if fam.ClientID != clientID {
		return oauthErr(CodeUnauthorizedClient, "the token was issued to another client")
	}
	return s.revokeFamily(ctx, rt.FamilyID, "revocation_request")
}

func (s *Server) revokeAccessToken(ctx context.Context, clientID, tok string) error {
	c, err := s.verifier.Verify(ctx, tok)
	if errors.Is(err, token.ErrInvalidToken) {
		return nil // unknown, expired or not ours: 200
	}
	if err != nil {
		return err
	}
	if c.ClientID != clientID {
		return oauthErr(CodeUnauthorizedClient, "the token was issued to another client")
	}
	if err := s.revocations.Revoke(ctx, store.Revocation{Kind: store.KindJTI, Value: c.JTI}, c.Expiry.Add(token.MaxLeeway)); err != nil {
		return err
	}
	s.audit.InfoContext(ctx, "token.revoke", "event", "token.revoke", "kind", "access_token", "reason", "revocation_request",
		"client_id", c.ClientID, "sub", c.Subject, "scope", strings.Join(c.Scope, " "), "jti", c.JTI, "jkt", c.JKT)
	return nil
}
