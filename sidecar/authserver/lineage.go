package authserver

import (
	"context"

	"github.com/keyless-dev/keyless/sidecar/store"
)

// Lineage: a lease family minted from one of this server's access tokens
// records the login (refresh-token family) that token came from, so that
// revoking the login, however and whenever it happens (RFC 7009 of the
// refresh token, refresh-token reuse, device-code reuse), ends the lease
// families minted from it. See docs/revocation.md.
//
// https://www.rfc-editor.org/rfc/rfc7009#section-2.1 ("the authorization
// server ... SHOULD also invalidate ... tokens based on the same
// authorization grant")

// LoginOf returns the login family an access token of this server belongs
// to, or "" when the jti is unknown (another issuer's token, or one whose
// family has moved past it).
func (s *Server) LoginOf(ctx context.Context, jti string) (string, error) {
	var fam string
	err := s.db.View(ctx, func(tx store.Tx) error {
		fam = string(tx.Get(bucketLineage, jti))
		return nil
	})
	return fam, err
}

// LoginRevoked reports whether a login family was revoked. The family
// record is durable and outlives its refresh tokens, so the answer does
// not lapse when a revocation entry's lifetime ends. An unknown family is
// reported revoked: it cannot vouch for anything (fail closed).
func (s *Server) LoginRevoked(ctx context.Context, famID string) (bool, error) {
	var fam family
	found := false
	err := s.db.View(ctx, func(tx store.Tx) error {
		var err error
		found, err = getJSON(tx, bucketFamily, famID, &fam)
		return err
	})
	if err != nil {
		return false, err
	}
	return !found || fam.Revoked, nil
}

// OnLoginRevoked registers fn to run after a login family is revoked and
// before the revocation is acknowledged: the vending service revokes the
// lease families minted from it, at every proxy. An error from fn fails
// the revocation (the caller answers 5xx and may retry; revoking again is
// harmless).
func (s *Server) OnLoginRevoked(fn func(ctx context.Context, family string) error) {
	s.grantsMu.Lock()
	defer s.grantsMu.Unlock()
	s.loginHooks = append(s.loginHooks, fn)
}
