package check

import (
	"net/url"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/internal/uri"
)

// MaxQueryParams bounds the "&"-separated fields of a query. It is Go's
// own limit (net/url, net/http/httputil): past it a parser drops the whole
// query, so the proxy refuses the request instead of forwarding it
// without its query.
const MaxQueryParams = 10000

// Query refuses a raw query (the request-target after "?", as sent) that
// the proxy and the upstream might read differently (400):
//
//   - a ";" anywhere: some frameworks split on it, Go's parser refuses it
//     (and httputil.ReverseProxy would drop it), so what the client meant
//     is ambiguous;
//   - a "%" not followed by two hex digits (RFC 3986 section 2.1);
//   - more than [MaxQueryParams] fields.
//
// A query that passes is forwarded byte for byte.
//
// https://www.rfc-editor.org/rfc/rfc3986#section-3.4
func Query(raw string) *Error {
	if raw == "" {
		return nil
	}
	if strings.Count(raw, "&")+1 > MaxQueryParams {
		return &Error{Code: CodeInvalidRequest, Msg: "query has too many parameters", Rule: "query"}
	}
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case ';':
			return &Error{Code: CodeInvalidRequest, Msg: "query contains a ; separator", Rule: "query"}
		case '%':
			if i+2 >= len(raw) || !uri.IsHex(raw[i+1]) || !uri.IsHex(raw[i+2]) {
				return &Error{Code: CodeInvalidRequest, Msg: "query contains an invalid percent-encoding", Rule: "query"}
			}
			i += 2
		}
	}
	return nil
}

// AccessTokenParam is the RFC 6750 parameter a client may put in a query
// (section 2.3) or a form body (section 2.2).
const AccessTokenParam = "access_token"

// TokenParams refuses a request that carries access_token in its query or
// its form body (400 invalid_request): only the Authorization header is
// accepted (RFC 9449 section 7.1), and a token in a URL or body would
// otherwise be passed on to the upstream and its logs. query must have
// passed [Query]; form is the body of an
// application/x-www-form-urlencoded request, nil otherwise.
//
// https://www.rfc-editor.org/rfc/rfc6750#section-2.2
func TokenParams(query string, form []byte) *Error {
	if hasParam(query, AccessTokenParam) || hasParam(string(form), AccessTokenParam) {
		return &Error{Code: CodeInvalidRequest, Msg: "access tokens are accepted only in the Authorization header", Rule: "token.param"}
	}
	return nil
}

// hasParam reports whether a urlencoded string has a field named name,
// splitting on "&" and ";" and decoding each name, whatever the count of
// fields or the validity of other escapes (url.ParseQuery gives up on
// both).
func hasParam(s, name string) bool {
	if !strings.Contains(s, name) && !strings.Contains(s, "%") && !strings.Contains(s, "+") {
		return false
	}
	for s != "" {
		var field string
		if i := strings.IndexAny(s, "&;"); i >= 0 {
			field, s = s[:i], s[i+1:]
		} else {
			field, s = s, ""
		}
		k, _, _ := strings.Cut(field, "=")
		if k == name {
			return true
		}
		if d, err := url.QueryUnescape(k); err == nil && d == name {
			return true
		}
	}
	return false
}
