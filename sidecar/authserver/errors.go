package authserver

import (
	"encoding/json"
	"net/http"

	"github.com/keyless-dev/keyless/sidecar/oauth"
)

// OAuth error codes the server answers with; the table is in
// [oauth].
const (
	CodeInvalidRequest       = oauth.CodeInvalidRequest
	CodeInvalidClient        = oauth.CodeInvalidClient
	CodeInvalidGrant         = oauth.CodeInvalidGrant
	CodeUnauthorizedClient   = oauth.CodeUnauthorizedClient
	CodeUnsupportedGrantType = oauth.CodeUnsupportedGrantType
	CodeInvalidScope         = oauth.CodeInvalidScope
	CodeAuthorizationPending = oauth.CodeAuthorizationPending
	CodeSlowDown             = oauth.CodeSlowDown
	CodeAccessDenied         = oauth.CodeAccessDenied
	CodeExpiredToken         = oauth.CodeExpiredToken
	CodeInvalidDPoPProof     = oauth.CodeInvalidDPoPProof
	CodeUseDPoPNonce         = oauth.CodeUseDPoPNonce
	CodeUnsupportedTokenType = oauth.CodeUnsupportedTokenType
	CodeServerError          = oauth.CodeServerError
	CodeUnavailable          = oauth.CodeUnavailable
)

// Error is what an endpoint answers when it refuses a request: the shared
// [oauth.Error], so the token endpoint and the grants plugged into it
// render refusals the same way.
type Error = oauth.Error

func oauthErr(code, msg string) *Error { return oauth.NewError(code, msg) }

func writeJSON(w http.ResponseWriter, status int, v any) { oauth.WriteJSON(w, status, v) }

// writeJSONCacheable writes a public, cacheable JSON document (metadata).
func writeJSONCacheable(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "server error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// renderError writes an *Error as RFC 6749 section 5.2 JSON and logs the
// cause of a 5xx.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	if e := oauth.WriteError(w, err); e.Status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "code", e.Code, "err", e.Err)
	}
}
