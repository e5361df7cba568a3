package authserver

import (
	"net/http"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/oauth"
)

// RevokeRequest is a parsed RFC 7009 revocation request, handed to the
// [Revoker]s registered with [Server.RegisterRevoker].
type RevokeRequest = oauth.RevokeRequest

// Revoker revokes the tokens of a service that shares the issuer's
// revocation endpoint ([oauth.Revoker]).
type Revoker = oauth.Revoker

var _ oauth.RevokerRegistry = (*Server)(nil)

// PathRevocationFeed is where [Server.SetRevocationFeed]'s handler is
// served, under the issuer URL.
const PathRevocationFeed = "/revocations"

// SetRevocationFeed serves h (revfeed.Handler: the revocation log for
// proxies without a shared store) at PathRevocationFeed and advertises it
// in the metadata. Call it before serving [Server.Handler].
func (s *Server) SetRevocationFeed(h http.Handler) {
	s.grantsMu.Lock()
	defer s.grantsMu.Unlock()
	s.feed = h
}

func (s *Server) revocationFeed() http.Handler {
	s.grantsMu.RLock()
	defer s.grantsMu.RUnlock()
	return s.feed
}

// RegisterRevoker adds a [Revoker] to the revocation endpoint; revokers
// are asked in the order they were added, before the server's own tokens.
func (s *Server) RegisterRevoker(r Revoker) {
	s.grantsMu.Lock()
	defer s.grantsMu.Unlock()
	s.revokers = append(s.revokers, r)
}

// RequireProofOfKey is [oauth.RequireProofOfKey].
func RequireProofOfKey(jkt string, proof *dpop.Proof) error {
	return oauth.RequireProofOfKey(jkt, proof)
}
