package authserver

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// Introspection is the RFC 7662 section 2.2 response.
type Introspection struct {
	Active    bool              `json:"active"`
	Scope     string            `json:"scope,omitempty"`
	ClientID  string            `json:"client_id,omitempty"`
	Sub       string            `json:"sub,omitempty"`
	Exp       int64             `json:"exp,omitempty"`
	Iat       int64             `json:"iat,omitempty"`
	Iss       string            `json:"iss,omitempty"`
	Aud       []string          `json:"aud,omitempty"`
	JTI       string            `json:"jti,omitempty"`
	TokenType string            `json:"token_type,omitempty"`
	Cnf       map[string]string `json:"cnf,omitempty"`
}

// serveIntrospect is RFC 7662 token introspection. It requires the caller
// to authenticate (section 2.1: "the endpoint MUST also require some form
// of authorization"): a confidential client with HTTP Basic, or the admin
// token as a Bearer token. Public clients cannot introspect.
//
// https://www.rfc-editor.org/rfc/rfc7662#section-2
func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	resp, err := s.introspect(w, r)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) introspect(w http.ResponseWriter, r *http.Request) (*Introspection, error) {
	form, err := readForm(w, r)
	if err != nil {
		return nil, err
	}
	if !s.adminBearer(r) {
		if _, _, basic := r.BasicAuth(); !basic {
			return nil, invalidClient("introspection requires client authentication")
		}
		if _, authed, err := s.identifyClient(r, form); err != nil {
			return nil, err
		} else if !authed {
			return nil, invalidClient("introspection requires client authentication")
		}
	}
	tok := form.Get("token")
	if tok == "" {
		return nil, oauthErr(CodeInvalidRequest, "token is required")
	}
	ctx := r.Context()
	inactive := &Introspection{Active: false}
	if strings.Count(tok, ".") == 2 {
		c, err := s.verifier.Verify(ctx, tok)
		if errors.Is(err, token.ErrInvalidToken) {
			return inactive, nil
		}
		if err != nil {
			return nil, err
		}
		if revoked, err := s.Revoked(ctx, c); err != nil || revoked {
			return inactive, err
		}
		return &Introspection{Active: true, Scope: strings.Join(c.Scope, " "), ClientID: c.ClientID, Sub: c.Subject,
			Exp: c.Expiry.Unix(), Iat: c.IssuedAt.Unix(), Iss: c.Issuer, Aud: c.Audience, JTI: c.JTI,
			TokenType: "DPoP", Cnf: map[string]string{"jkt": c.JKT}}, nil
	}
	var rt refreshToken
	var fam family
	found := false
	err = s.db.View(ctx, func(tx store.Tx) error {
		ok, err := getJSON(tx, bucketRefresh, secretHash(tok), &rt)
		if err != nil || !ok {
			return err
		}
		found, err = getJSON(tx, bucketFamily, rt.FamilyID, &fam)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found || rt.Used || fam.Revoked || !s.now().Before(fam.ExpiresAt) {
		return inactive, nil
	}
	return &Introspection{Active: true, Scope: strings.Join(fam.Scope, " "), ClientID: fam.ClientID, Sub: fam.Subject,
		Exp: fam.ExpiresAt.Unix(), Iat: rt.CreatedAt.Unix(), Iss: s.issuer, TokenType: "refresh_token",
		Cnf: map[string]string{"jkt": fam.JKT}}, nil
}

// adminBearer reports whether the request carries the admin token,
// compared in constant time.
func (s *Server) adminBearer(r *http.Request) bool {
	if s.adminToken == "" {
		return false
	}
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(tok), []byte(s.adminToken)) == 1
}
