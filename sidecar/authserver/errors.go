package authserver

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// OAuth error codes (RFC 6749 section 5.2, RFC 8628 section 3.5, RFC 9449
// section 12.2, RFC 7009 section 2.2.1).
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidClient        = "invalid_client"
	CodeInvalidGrant         = "invalid_grant"
	CodeUnauthorizedClient   = "unauthorized_client"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeInvalidScope         = "invalid_scope"
	CodeAuthorizationPending = "authorization_pending"
	CodeSlowDown             = "slow_down"
	CodeAccessDenied         = "access_denied"
	CodeExpiredToken         = "expired_token"
	CodeInvalidDPoPProof     = "invalid_dpop_proof"
	CodeUseDPoPNonce         = "use_dpop_nonce"
	CodeUnsupportedTokenType = "unsupported_token_type"
	CodeServerError          = "server_error"
	CodeUnavailable          = "temporarily_unavailable"
)

// Error is what an endpoint answers when it refuses a request. What the
// client sees (Status, Code, Msg) is kept apart from what is only logged
// (Err). Grant handlers return *Error to choose the answer; any other error
// is answered 500 server_error and logged.
type Error struct {
	Status int    // HTTP status; zero means 400
	Code   string // the "error" member
	Msg    string // error_description: fixed text, never attacker bytes
	Err    error  // logged, never sent
	// Header is added to the response (DPoP-Nonce, WWW-Authenticate,
	// Retry-After).
	Header http.Header
}

func (e *Error) Error() string {
	s := e.Code
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return "authserver: " + s
}

func (e *Error) Unwrap() error { return e.Err }

// OAuthError builds a 400 *Error: an RFC 6749 section 5.2 refusal.
func OAuthError(code, msg string) *Error { return oauthErr(code, msg) }

func oauthErr(code, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Msg: msg}
}

// AsError maps any error to the *Error to answer with: one place decides
// what a failure looks like to a client. A storage failure
// ([*StorageError]) is 503 temporarily_unavailable; any other unexpected
// failure is 500 server_error, the cause only logged; every 503 carries
// Retry-After. The vending service answers through it too.
func AsError(err error) *Error { return asError(err) }

func asError(err error) *Error {
	var e *Error
	var se *StorageError
	switch {
	case errors.As(err, &e):
		if e.Status == 0 {
			e.Status = http.StatusBadRequest
		}
	case errors.As(err, &se):
		e = unavailableError(err)
	default:
		return &Error{Status: http.StatusInternalServerError, Code: CodeServerError, Err: err}
	}
	if e.Status == http.StatusServiceUnavailable && e.Header.Get("Retry-After") == "" {
		if e.Header == nil {
			e.Header = http.Header{}
		}
		e.Header.Set("Retry-After", retryAfterUnavailable)
	}
	return e
}

// writeJSON renders a JSON body with the headers every token-endpoint-like
// response carries (RFC 6749 section 5.1: no-store).
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

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

// renderError writes an *Error as RFC 6749 section 5.2 JSON.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	if e.Status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "code", e.Code, "err", e.Err)
	}
	for k, vs := range e.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	body := map[string]string{"error": e.Code}
	if e.Msg != "" {
		body["error_description"] = e.Msg
	}
	writeJSON(w, e.Status, body)
}
