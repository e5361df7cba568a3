package proxy

// authorize decides the route: a path no route matches is 404, a method the
// matching route does not allow 405 (both only after authentication), and
// the lease's scopes must cover every scope the route needs, by exact,
// case-sensitive match (RFC 6749 section 3.3): otherwise 403
// insufficient_scope with the needed scope (RFC 6750 section 3.1).
//
// https://www.rfc-editor.org/rfc/rfc6750#section-3.1
func (p *Proxy) authorize(x *exchange) *Error {
	if x.route == nil {
		if x.pathOnly {
			return &Error{Code: CodeMethodNotAllowed, Msg: "method not allowed on this route", Rule: "route.method"}
		}
		return &Error{Code: CodeNotFound, Msg: "no such route", Rule: "route"}
	}
	return checkScopes(x)
}

func checkScopes(x *exchange) *Error {
	for _, s := range x.route.Scopes {
		if !x.claims.HasScope(s) {
			return &Error{Code: CodeInsufficientScope, Msg: "the lease lacks a scope this route needs", Scope: x.route.scope, Rule: "scope"}
		}
	}
	return nil
}
