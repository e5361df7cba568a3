package check

import (
	"encoding/json"
	"strings"
	"time"
)

// Error is a refusal at the HTTP edge. What the client sees (Code, Msg,
// Scope) is kept apart from what is logged (Err, Rule).
type Error struct {
	// Code is the protocol error code (RFC 6750 section 3.1, RFC 9449
	// section 7.1 and 12.2, or one of the proxy's own codes below); it
	// decides the status through [Status].
	Code string
	// Msg is error_description: fixed text, never attacker bytes.
	Msg string
	// Err is the cause, logged, never sent.
	Err error
	// Rule names the check that refused, for audit and metrics
	// ("scheme", "token", "dpop.htu", ...); empty means Code.
	Rule string
	// Scope is the scope the route needs, for insufficient_scope.
	Scope string
	// RetryAfter sets Retry-After when positive.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := "proxy: " + e.Code + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// RuleName is Rule, or Code when Rule is empty: the label of audit lines
// and metrics.
func (e *Error) RuleName() string {
	if e.Rule != "" {
		return e.Rule
	}
	return e.Code
}

// Error codes. The first group goes in WWW-Authenticate (RFC 6750 section
// 3.1, RFC 9449 section 7.1); the rest only in the JSON body.
const (
	// CodeNoCredentials is the internal code of a request without DPoP
	// credentials: 401 with a challenge that has no error parameter
	// (RFC 6750 section 3.1, "401/none").
	CodeNoCredentials     = "missing_credentials"
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInvalidProof      = "invalid_dpop_proof"
	CodeUseNonce          = "use_dpop_nonce"
	CodeInsufficientScope = "insufficient_scope"

	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeOriginNotAllowed = "origin_not_allowed"
	CodeRateLimited      = "rate_limited"
	CodeBodyTooLarge     = "request_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodePreviewMissing   = "preview_unavailable"
	CodeUnavailable      = "temporarily_unavailable"
	CodeBadGateway       = "bad_gateway"
	CodeGatewayTimeout   = "gateway_timeout"
	// CodeMisdirected: the request names a host this proxy does not
	// serve (RFC 9110 section 15.5.20).
	CodeMisdirected = "misdirected_request"
)

// Status maps every error code to its HTTP status, in one place.
func Status(code string) int {
	switch code {
	case CodeNoCredentials, CodeInvalidToken, CodeInvalidProof, CodeUseNonce:
		return 401
	case CodeInvalidRequest:
		return 400
	case CodeInsufficientScope, CodeOriginNotAllowed:
		return 403
	case CodeNotFound:
		return 404
	case CodeMethodNotAllowed:
		return 405
	case CodeMisdirected:
		return 421
	case CodeRateLimited:
		return 429
	case CodeBodyTooLarge:
		return 413
	case CodeUnsupportedMedia:
		return 415
	case CodePreviewMissing:
		return 501
	case CodeBadGateway:
		return 502
	case CodeGatewayTimeout:
		return 504
	}
	return 503
}

// Challenged reports whether a code is answered with WWW-Authenticate.
func Challenged(code string) bool {
	switch code {
	case CodeNoCredentials, CodeInvalidRequest, CodeInvalidToken, CodeInvalidProof, CodeUseNonce, CodeInsufficientScope:
		return true
	}
	return false
}

// Challenge builds WWW-Authenticate for e (RFC 9449 section 7.1); algs is
// the space-separated list of accepted proof algorithms.
func Challenge(e *Error, algs string) string {
	var b strings.Builder
	b.WriteString("DPoP")
	sep := " "
	param := func(k, v string) {
		b.WriteString(sep)
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(HeaderSafe(v))
		b.WriteByte('"')
		sep = ", "
	}
	if e.Code != CodeNoCredentials {
		param("error", e.Code)
		if e.Msg != "" {
			param("error_description", e.Msg)
		}
		if e.Scope != "" {
			param("scope", e.Scope)
		}
	}
	param("algs", algs)
	return b.String()
}

// HeaderSafe keeps only the characters RFC 6750 section 3 allows in
// error_description: %x20-21 / %x23-5B / %x5D-7E.
func HeaderSafe(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == 0x20 || c == 0x21 || c >= 0x23 && c <= 0x5b || c >= 0x5d && c <= 0x7e) {
			b := make([]byte, 0, len(s))
			for j := 0; j < len(s); j++ {
				if c := s[j]; c == 0x20 || c == 0x21 || c >= 0x23 && c <= 0x5b || c >= 0x5d && c <= 0x7e {
					b = append(b, c)
				}
			}
			return string(b)
		}
	}
	return s
}

// ErrorBody is the JSON body of every refusal.
type ErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// ExposeHeaders must be readable by browser code (RFC 9449 sections 7.1
// and 8).
const ExposeHeaders = "WWW-Authenticate, DPoP-Nonce"

// Body is the JSON body for e, newline-terminated: {error,
// error_description}, with "unauthorized" for a request without
// credentials.
func Body(e *Error) []byte {
	code := e.Code
	if code == CodeNoCredentials {
		code = "unauthorized"
	}
	body, _ := json.Marshal(ErrorBody{Error: code, Description: HeaderSafe(e.Msg)})
	return append(body, '\n')
}
