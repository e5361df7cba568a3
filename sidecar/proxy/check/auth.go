package check

import (
	"errors"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/store"
	"github.com/keyless-dev/keyless/sidecar/token/atjwt"
)

// MaxTokenLen bounds the access token, checked before any decoding.
const MaxTokenLen = 8 << 10

// Scheme requires exactly one `Authorization: DPoP <token>` among vals
// (every Authorization field value) and returns the token.
//
//   - no Authorization (Proxy-Authorization does not count, RFC 9449
//     section 7.1): 401 without an error code;
//   - two Authorization fields: 400 invalid_request (RFC 9449 section 7.2);
//   - Bearer: 401 invalid_token, a downgrade (RFC 9449 section 7.2,
//     docs/security.md#a5); any other scheme: 401 without error code.
//
// The scheme name is case-insensitive and may be followed by several spaces
// (RFC 9110 section 11.1, docs/security.md#i-12).
//
// https://www.rfc-editor.org/rfc/rfc9449#section-7.1
func Scheme(vals []string) (string, *Error) {
	switch {
	case len(vals) == 0:
		return "", &Error{Code: CodeNoCredentials, Msg: "DPoP credentials required", Rule: "scheme"}
	case len(vals) > 1:
		return "", &Error{Code: CodeInvalidRequest, Msg: "more than one Authorization header", Rule: "scheme"}
	}
	scheme, rest, _ := strings.Cut(vals[0], " ")
	switch {
	case strings.EqualFold(scheme, "DPoP"):
	case strings.EqualFold(scheme, "Bearer"):
		return "", &Error{Code: CodeInvalidToken, Msg: "DPoP-bound tokens must use the DPoP scheme", Rule: "scheme.bearer"}
	default:
		return "", &Error{Code: CodeNoCredentials, Msg: "unsupported authorization scheme", Rule: "scheme"}
	}
	tok := strings.TrimLeft(rest, " ")
	if tok == "" || !isToken68(tok) {
		return "", &Error{Code: CodeInvalidRequest, Msg: "malformed DPoP credentials", Rule: "scheme"}
	}
	if len(tok) > MaxTokenLen {
		return "", &Error{Code: CodeInvalidToken, Msg: "token too large", Rule: "token.size"}
	}
	return tok, nil
}

// isToken68 is RFC 9110 section 11.2's token68.
func isToken68(s string) bool {
	i := len(s)
	for i > 0 && s[i-1] == '=' {
		i--
	}
	if i == 0 {
		return false
	}
	for k := 0; k < i; k++ {
		c := s[k]
		if !(isAlnum(c) || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// TokenSyntax refuses a token that is not three dot-separated segments
// before it is parsed ("."-bombs).
func TokenSyntax(tok string) *Error {
	if strings.Count(tok, ".") != 2 {
		return &Error{Code: CodeInvalidToken, Msg: "token is not a JWT", Rule: "token.syntax"}
	}
	return nil
}

// TokenVerifyError classifies an error from a token verifier: one wrapping
// atjwt.ErrInvalid (token.ErrInvalidToken) is a 401 invalid_token; any
// other means the keys could not be fetched: 503, never a pass.
func TokenVerifyError(err error) *Error {
	if errors.Is(err, atjwt.ErrInvalid) {
		return &Error{Code: CodeInvalidToken, Msg: "token is not valid", Err: err, Rule: "token.verify"}
	}
	return &Error{Code: CodeUnavailable, Msg: "token keys unavailable", Err: err, Rule: "token.keys"}
}

// Lease applies docs/security.md#d14 to verified claims: only leases (a
// lease id and aud = audience, this proxy), bound to a key, with an expiry.
func Lease(c *atjwt.Claims, audience string) *Error {
	if c.LeaseID == "" {
		return &Error{Code: CodeInvalidToken, Msg: "only leases are accepted here", Rule: "token.lease"}
	}
	aud := false
	for _, a := range c.Audience {
		aud = aud || a == audience
	}
	if !aud {
		return &Error{Code: CodeInvalidToken, Msg: "token audience is not this proxy", Rule: "token.aud"}
	}
	if c.JKT == "" {
		return &Error{Code: CodeInvalidToken, Msg: "token is not DPoP-bound", Rule: "token.cnf"}
	}
	if c.Expiry.IsZero() {
		return &Error{Code: CodeInvalidToken, Msg: "token has no expiry", Rule: "token.exp"}
	}
	return nil
}

// TokenTime checks exp and nbf with leeway; it runs on every request,
// cached claims or not.
func TokenTime(c *atjwt.Claims, now time.Time, leeway time.Duration) *Error {
	if !now.Before(c.Expiry.Add(leeway)) {
		return &Error{Code: CodeInvalidToken, Msg: "token expired", Rule: "token.exp"}
	}
	if !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore) {
		return &Error{Code: CodeInvalidToken, Msg: "token not yet valid", Rule: "token.nbf"}
	}
	return nil
}

// Revocations are the revocation entries consulted for a lease: the lease,
// the token, and the watermarks of its subject, app and key, compared
// with the lease's iat (docs/revocation.md).
func Revocations(c *atjwt.Claims) []store.Revocation {
	return append([]store.Revocation{
		{Kind: store.KindLease, Value: c.LeaseID},
		{Kind: store.KindJTI, Value: c.JTI},
	}, store.Watermarks(store.SubjectValue(c.IdP, c.Subject), c.ClientID, c.JKT, c.IssuedAt)...)
}

// Revoked turns a revocation store's answer into a refusal. An unreachable
// store is a 503, never a pass (docs/security.md#d9).
func Revoked(revoked bool, err error) *Error {
	if err != nil {
		return &Error{Code: CodeUnavailable, Msg: "revocation store unavailable", Err: err, Rule: "revocation.store"}
	}
	if revoked {
		return &Error{Code: CodeInvalidToken, Msg: "token revoked", Rule: "token.revoked"}
	}
	return nil
}

// ProofError turns an error of dpop.SingleProof or dpop.Verify into a
// refusal: a failed check is 401 with its RFC 9449 code; a replay store
// that is full or cannot answer is a 503.
func ProofError(err error) *Error {
	var ce *dpop.CheckError
	if errors.As(err, &ce) {
		return &Error{Code: ce.Code(), Msg: ce.Description(), Err: err, Rule: "dpop." + ce.Check.String()}
	}
	if errors.Is(err, store.ErrFull) {
		return &Error{Code: CodeUnavailable, Msg: "replay cache full", Err: err, Rule: "replay.full"}
	}
	return &Error{Code: CodeUnavailable, Msg: "replay cache unavailable", Err: err, Rule: "replay.store"}
}

// Route404 decides an authenticated request's route: a path no route matches
// is 404, a method the matching route does not allow 405 (both only after
// authentication, so unauthenticated callers learn nothing about routes).
func Route404(matched, pathOnly bool) *Error {
	if matched {
		return nil
	}
	if pathOnly {
		return &Error{Code: CodeMethodNotAllowed, Msg: "method not allowed on this route", Rule: "route.method"}
	}
	return &Error{Code: CodeNotFound, Msg: "no such route", Rule: "route"}
}

// Scopes requires the lease's scopes to cover every scope the route
// needs, by exact, case-sensitive match (RFC 6749 section 3.3): otherwise
// 403 insufficient_scope with the needed scope (RFC 6750 section 3.1).
//
// https://www.rfc-editor.org/rfc/rfc6750#section-3.1
func Scopes(need []string, c *atjwt.Claims) *Error {
	for _, s := range need {
		if !c.HasScope(s) {
			return &Error{Code: CodeInsufficientScope, Msg: "the lease lacks a scope this route needs", Scope: strings.Join(need, " "), Rule: "scope"}
		}
	}
	return nil
}

// Method refuses methods outside the standard set (405).
func Method(method string) *Error {
	if !StandardMethod(method) {
		return &Error{Code: CodeMethodNotAllowed, Msg: "method not allowed", Rule: "method"}
	}
	return nil
}

// Path takes the raw path of a request-target once and canonicalizes it
// (400 for ambiguous forms): raw is what htu is computed from, canonical
// what routes match and the upstream receives.
func Path(requestURI string) (raw, canonical string, e *Error) {
	raw, ok := RawPath(requestURI)
	if !ok {
		return "", "", &Error{Code: CodeInvalidRequest, Msg: "invalid request target", Rule: "path"}
	}
	c, err := CanonicalPath(raw)
	if err != nil {
		return "", "", &Error{Code: CodeInvalidRequest, Msg: err.Error(), Err: err, Rule: "path"}
	}
	return raw, c, nil
}
