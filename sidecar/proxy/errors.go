package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is a refusal at the HTTP edge. What the client sees (Code, Msg,
// Scope) is kept apart from what is logged (Err, Rule).
type Error struct {
	// Code is the protocol error code (RFC 6750 section 3.1, RFC 9449
	// section 7.1 and 12.2, or one of the proxy's own codes below); it
	// decides the status through statusOf.
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

func (e *Error) rule() string {
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
)

// statusOf maps every error code to its HTTP status, in one place.
func statusOf(code string) int {
	switch code {
	case CodeNoCredentials, CodeInvalidToken, CodeInvalidProof, CodeUseNonce:
		return http.StatusUnauthorized
	case CodeInvalidRequest:
		return http.StatusBadRequest
	case CodeInsufficientScope, CodeOriginNotAllowed:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeBodyTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case CodePreviewMissing:
		return http.StatusNotImplemented
	case CodeBadGateway:
		return http.StatusBadGateway
	case CodeGatewayTimeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusServiceUnavailable
}

// challenged reports whether a code is answered with WWW-Authenticate.
func challenged(code string) bool {
	switch code {
	case CodeNoCredentials, CodeInvalidRequest, CodeInvalidToken, CodeInvalidProof, CodeUseNonce, CodeInsufficientScope:
		return true
	}
	return false
}

// upstreamError classifies an error from the upstream round trip.
func upstreamError(err error) *Error {
	var mb *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mb):
		return &Error{Code: CodeBodyTooLarge, Msg: "request body too large", Err: err}
	case errors.Is(err, errRedaction):
		return &Error{Code: CodeBadGateway, Msg: "upstream response could not be checked", Err: err, Rule: "redact"}
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return &Error{Code: CodeGatewayTimeout, Msg: "upstream did not answer in time", Err: err, Rule: "upstream"}
	case errors.Is(err, context.Canceled):
		return &Error{Code: CodeBadGateway, Msg: "request canceled", Err: err, Rule: "canceled"}
	}
	return &Error{Code: CodeBadGateway, Msg: "upstream unavailable", Err: err, Rule: "upstream"}
}

// challenge builds WWW-Authenticate for e (RFC 9449 section 7.1).
func (p *Proxy) challenge(e *Error) string {
	var b strings.Builder
	b.WriteString("DPoP")
	sep := " "
	param := func(k, v string) {
		b.WriteString(sep)
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(headerSafe(v))
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
	param("algs", p.algs)
	return b.String()
}

// headerSafe keeps only the characters RFC 6750 section 3 allows in
// error_description: %x20-21 / %x23-5B / %x5D-7E.
func headerSafe(s string) string {
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

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// render writes e: the one place error responses are produced.
func (p *Proxy) render(x *exchange, e *Error) {
	h := x.w.Header()
	if challenged(e.Code) {
		h.Set("WWW-Authenticate", p.challenge(e))
	}
	// Browser-facing errors must expose these, or page code cannot read
	// them (RFC 9449 sections 7.1 and 8; SECURITY.md rule 4).
	h.Set("Access-Control-Expose-Headers", exposeHeaders)
	p.corsAllow(x)
	// In nonce mode every answer carries the current nonce, exactly once:
	// a use_dpop_nonce client retries with it (RFC 9449 section 8).
	p.setNonce(x)
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	code := e.Code
	if code == CodeNoCredentials {
		code = "unauthorized"
	}
	body, _ := json.Marshal(errorBody{Error: code, Description: headerSafe(e.Msg)})
	body = append(body, '\n')
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(statusOf(e.Code))
	if x.r.Method != http.MethodHead {
		x.w.Write(body)
	}
}
