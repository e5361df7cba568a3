package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/keyless-dev/keyless/sidecar/proxy/check"
)

// Error is a refusal at the HTTP edge ([check.Error]). What the client
// sees (Code, Msg, Scope) is kept apart from what is logged (Err, Rule).
type Error = check.Error

// Error codes ([check]). The first group goes in WWW-Authenticate (RFC
// 6750 section 3.1, RFC 9449 section 7.1); the rest only in the JSON body.
const (
	CodeNoCredentials     = check.CodeNoCredentials
	CodeInvalidRequest    = check.CodeInvalidRequest
	CodeInvalidToken      = check.CodeInvalidToken
	CodeInvalidProof      = check.CodeInvalidProof
	CodeUseNonce          = check.CodeUseNonce
	CodeInsufficientScope = check.CodeInsufficientScope

	CodeNotFound         = check.CodeNotFound
	CodeMethodNotAllowed = check.CodeMethodNotAllowed
	CodeOriginNotAllowed = check.CodeOriginNotAllowed
	CodeRateLimited      = check.CodeRateLimited
	CodeBodyTooLarge     = check.CodeBodyTooLarge
	CodeUnsupportedMedia = check.CodeUnsupportedMedia
	CodePreviewMissing   = check.CodePreviewMissing
	CodeUnavailable      = check.CodeUnavailable
	CodeBadGateway       = check.CodeBadGateway
	CodeGatewayTimeout   = check.CodeGatewayTimeout
)

// statusOf maps every error code to its HTTP status ([check.Status]).
func statusOf(code string) int { return check.Status(code) }

func headerSafe(s string) string { return check.HeaderSafe(s) }

type errorBody = check.ErrorBody

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

// render writes e: the one place error responses are produced.
func (p *Proxy) render(x *exchange, e *Error) {
	h := x.w.Header()
	if check.Challenged(e.Code) {
		h.Set("WWW-Authenticate", check.Challenge(e, p.algs))
	}
	// Browser-facing errors must expose these, or page code cannot read
	// them (RFC 9449 sections 7.1 and 8; docs/security.md#refusals).
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
	body := check.Body(e)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(statusOf(e.Code))
	if x.r.Method != http.MethodHead {
		x.w.Write(body)
	}
}
