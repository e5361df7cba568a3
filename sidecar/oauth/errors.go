package oauth

import (
	"errors"
	"net/http"
	"strconv"
)

// OAuth error codes: RFC 6749 section 5.2, RFC 8628 section 3.5, RFC 8693
// section 2.2.2, RFC 8707 section 2, RFC 9449 section 12.2, RFC 7009
// section 2.2.1.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidClient        = "invalid_client"
	CodeInvalidGrant         = "invalid_grant"
	CodeUnauthorizedClient   = "unauthorized_client"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeInvalidScope         = "invalid_scope"
	CodeInvalidTarget        = "invalid_target"
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
// client sees (Status, Code, Msg, Header) is kept apart from what is only
// logged (Err). Grant handlers return *Error to choose the answer; any
// other error is answered 500 server_error by [AsError].
type Error struct {
	// Status is the HTTP status; zero means 400.
	Status int
	// Code is the "error" member.
	Code string
	// Msg is error_description: fixed text, never request bytes or token
	// contents. Empty omits the member.
	Msg string
	// Err is the cause, logged by the caller, never sent.
	Err error
	// Header is added to the response (DPoP-Nonce, WWW-Authenticate,
	// Retry-After); nil adds nothing.
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
	return "oauth: " + s
}

func (e *Error) Unwrap() error { return e.Err }

// NewError builds a 400 *Error: an RFC 6749 section 5.2 refusal.
//
// https://www.rfc-editor.org/rfc/rfc6749#section-5.2
func NewError(code, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Msg: msg}
}

// WithRetryAfter sets the Retry-After header (RFC 9110 section 10.2.3) to
// secs seconds and returns e: the answer to a request refused for rate or
// quota, so a well-behaved client knows when to come back.
//
// https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3
func (e *Error) WithRetryAfter(secs int64) *Error {
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Set("Retry-After", strconv.FormatInt(secs, 10))
	return e
}

// RetryAfterUnavailable is the Retry-After, in seconds, of every 503 that
// does not choose its own: storage that failed (a full disk, a store that
// cannot answer) usually recovers in seconds, or needs an operator.
const RetryAfterUnavailable = 5

// StorageError marks a failure of a server's storage: the database could
// not read or write (a full disk, a lost connection). [AsError] answers it
// alike at every endpoint: 503 temporarily_unavailable with Retry-After,
// never 500, and never a pass (RFC 6749 section 5.2; RFC 9110 section
// 15.6.4; docs/security.md).
type StorageError struct{ Err error }

func (e *StorageError) Error() string { return "storage: " + e.Err.Error() }
func (e *StorageError) Unwrap() error { return e.Err }

// AsError maps any error to the *Error to answer with: one place decides
// what a failure looks like to a client. A storage failure
// ([*StorageError]) is 503 temporarily_unavailable; any other unexpected
// failure is 500 server_error, the cause only logged; every 503 carries
// Retry-After. A nil error has no answer and gives nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	var se *StorageError
	switch {
	case errors.As(err, &e):
		if e.Status == 0 {
			e.Status = http.StatusBadRequest
		}
	case errors.As(err, &se):
		e = &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Msg: "storage is unavailable; retry later", Err: err}
	default:
		return &Error{Status: http.StatusInternalServerError, Code: CodeServerError, Err: err}
	}
	if e.Status == http.StatusServiceUnavailable && e.Header.Get("Retry-After") == "" {
		e.WithRetryAfter(RetryAfterUnavailable)
	}
	return e
}
