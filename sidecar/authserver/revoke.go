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
// answered 400 unauthorized_client and stays valid (docs/security.md#d5); a DPoP-bound token is
// revoked only with a proof of its key, else 400 invalid_dpop_proof and it
// stays valid, so a copy of a token cannot sign its owner out. Tokens of
// the vending service (leases, renewal tokens) go to its [Revoker].
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
	proof, err := s.verifyProof(r.Context(), r, "/revoke")
	if err != nil {
		return err
	}
	req := &RevokeRequest{Token: tok, Hint: form.Get("token_type_hint"), Client: client, Proof: proof, Now: s.now()}
	s.grantsMu.RLock()
	revokers := s.revokers
	s.grantsMu.RUnlock()
	for _, rv := range revokers {
		if handled, err := rv.RevokeToken(r.Context(), req); handled || err != nil {
			return err
		}
	}
	// A JWT has dots; our refresh tokens never do. The hint only orders the
	// search, and with disjoint formats the order does not matter.
	if strings.Count(tok, ".") == 2 {
		return s.revokeAccessToken(r.Context(), req)
	}
	return s.revokeRefreshToken(r.Context(), req)
}

func (s *Server) revokeRefreshToken(ctx context.Context, req *RevokeRequest) error {
	clientID, tok := req.Client.ID, req.Token
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
	if err := RequireProofOfKey(fam.JKT, req.Proof); err != nil {
		return err
	}
	return s.revokeFamily(ctx, rt.FamilyID, "revocation_request")
}

func (s *Server) revokeAccessToken(ctx context.Context, req *RevokeRequest) error {
	c, err := s.verifier.Verify(ctx, req.Token)
	if errors.Is(err, token.ErrInvalidToken) {
		return nil // unknown, expired or not ours: 200
	}
	if err != nil {
		return err
	}
	if c.ClientID != req.Client.ID {
		return oauthErr(CodeUnauthorizedClient, "the token was issued to another client")
	}
	if err := RequireProofOfKey(c.JKT, req.Proof); err != nil {
		return err
	}
	if err := s.revocations.Revoke(ctx, store.Revocation{Kind: store.KindJTI, Value: c.JTI}, c.Expiry.Add(token.MaxLeeway)); err != nil {
		return err
	}
	s.audit.InfoContext(ctx, "token.revoke", "event", "token.revoke", "kind", "access_token", "reason", "revocation_request",
		"client_id", c.ClientID, "sub", c.Subject, "scope", strings.Join(c.Scope, " "), "jti", c.JTI, "jkt", c.JKT)
	return nil
}
