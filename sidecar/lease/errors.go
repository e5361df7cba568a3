package lease

import (
	"net/http"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/oauth"
)

// OAuth error codes the vending service answers with; the table is in
// [oauth].
const (
	CodeInvalidRequest     = oauth.CodeInvalidRequest
	CodeInvalidClient      = oauth.CodeInvalidClient
	CodeInvalidGrant       = oauth.CodeInvalidGrant
	CodeInvalidScope       = oauth.CodeInvalidScope
	CodeInvalidTarget      = oauth.CodeInvalidTarget
	CodeUnauthorizedClient = oauth.CodeUnauthorizedClient
	CodeAccessDenied       = oauth.CodeAccessDenied
	CodeInvalidDPoPProof   = dpop.CodeInvalidProof
	CodeUseDPoPNonce       = dpop.CodeUseNonce
	CodeServerError        = oauth.CodeServerError
	CodeUnavailable        = oauth.CodeUnavailable
	CodeInvalidToken       = "invalid_token"
)

// Error is a refusal: the shared [oauth.Error], so a refusal renders the
// same at the vending endpoints and at the token endpoint. What the
// client sees (Status, Code, Msg) is kept apart from what is only logged
// (Err). Msg is fixed text, never request bytes, so it is always safe as
// error_description.
type Error = oauth.Error

func oauthErr(code, msg string) *Error { return oauth.NewError(code, msg) }

// asError maps any error to the *Error to answer with, as the token
// endpoint does.
func asError(err error) *Error { return oauth.AsError(err) }

// unavailable is the answer when a store could not tell: never a pass
// (docs/security.md#d9).
func unavailable(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Msg: "try again later", Err: err}
}

// keyMismatch is the answer to a subject token whose cnf.jkt is not the
// proof's key: 401 invalid_token with a DPoP challenge naming the accepted
// algorithms (RFC 6750 section 3, RFC 9449 section 7.1).
func (s *Service) keyMismatch() *Error {
	const msg = "the subject token is bound to another DPoP key"
	algs := s.o.DPoPAlgs
	if len(algs) == 0 {
		algs = dpop.DefaultAlgs
	}
	return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Msg: msg, Header: http.Header{
		"Www-Authenticate": {`DPoP error="invalid_token", error_description="` + msg + `", algs="` + strings.Join(algs, " ") + `"`},
	}}
}

// writeJSON renders a body with the headers every token-endpoint-like
// response carries ([oauth.WriteJSON]: no-store), and CORS headers so a
// browser micro app can read the answer and the DPoP-Nonce header.
//
// Access-Control-Allow-Origin is "*": these endpoints use no cookies or
// other ambient credentials (the subject token and proof travel in the
// request), so any origin may call them, as any origin may hold a token.
func writeJSON(w http.ResponseWriter, status int, v any) {
	corsHeaders(w)
	oauth.WriteJSON(w, status, v)
}

func corsHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, DPoP-Nonce")
}

// render writes err as RFC 6749 section 5.2 JSON, with the CORS headers,
// and logs the cause of a 5xx.
func (s *Service) render(w http.ResponseWriter, r *http.Request, err error) {
	corsHeaders(w)
	if e := oauth.WriteError(w, err); e.Status >= 500 {
		s.log.ErrorContext(r.Context(), "lease: request failed", "path", r.URL.Path, "code", e.Code, "err", e.Err)
	}
}
