package lease

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/authserver"
	"github.com/keyless-dev/keyless/sidecar/dpop"
)

// OAuth error codes the vending service answers with (RFC 6749 section
// 5.2, RFC 8693 section 2.2.2, RFC 8707 section 2, RFC 9449 section 12.2,
// RFC 7009 section 2.2.1).
const (
	CodeInvalidRequest     = authserver.CodeInvalidRequest
	CodeInvalidClient      = authserver.CodeInvalidClient
	CodeInvalidGrant       = authserver.CodeInvalidGrant
	CodeInvalidScope       = authserver.CodeInvalidScope
	CodeInvalidTarget      = "invalid_target"
	CodeUnauthorizedClient = authserver.CodeUnauthorizedClient
	CodeAccessDenied       = authserver.CodeAccessDenied
	CodeInvalidDPoPProof   = dpop.CodeInvalidProof
	CodeUseDPoPNonce       = dpop.CodeUseNonce
	CodeInvalidToken       = "invalid_token"
	CodeServerError        = authserver.CodeServerError
	CodeUnavailable        = authserver.CodeUnavailable
)

// Error is a refusal: the authorization server's error type, so a refusal
// renders the same at the vending endpoints and at the token endpoint.
// What the client sees (Status, Code, Msg) is kept apart from what is only
// logged (Err). Msg is fixed text, never request bytes, so it is always
// safe as error_description.
type Error = authserver.Error

func oauthErr(code, msg string) *Error { return authserver.OAuthError(code, msg) }

// asError maps any error to the *Error to answer with, as the token
// endpoint does.
func asError(err error) *Error { return authserver.AsError(err) }

// unavailable is the answer when a store could not tell: never a pass
// (SECURITY.md decision 9).
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

// toAuthserver is the refusal as the token endpoint's renderer takes it.
func toAuthserver(err error) error { return asError(err) }

// writeJSON renders a body with the headers every token-endpoint-like
// response carries: no-store (RFC 6749 section 5.1), and CORS headers so a
// browser micro app can read the answer and the DPoP-Nonce header.
//
// Access-Control-Allow-Origin is "*": these endpoints use no cookies or
// other ambient credentials (the subject token and proof travel in the
// request), so any origin may call them, as any origin may hold a token.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, DPoP-Nonce")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// render writes err as RFC 6749 section 5.2 JSON.
func (s *Service) render(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	if e.Status >= 500 {
		s.log.ErrorContext(r.Context(), "lease: request failed", "path", r.URL.Path, "code", e.Code, "err", e.Err)
	}
	for k, vs := range e.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	body := map[string]string{"error": e.Code}
	if d := description(e.Msg); d != "" {
		body["error_description"] = d
	}
	writeJSON(w, e.Status, body)
}

// description keeps only the characters RFC 6749 section 5.2 allows in
// error_description (%x20-21 / %x23-5B / %x5D-7E). Messages are fixed
// texts already; this makes sure a future one cannot break the rule.
func description(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0x20 || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) {
			b = append(b, c)
		}
	}
	return string(b)
}
