package proxy

import "github.com/keyless-dev/keyless/sidecar/proxy/check"

// authorize decides the route: a path no route matches is 404, a method the
// matching route does not allow 405 (both only after authentication), and
// the lease's scopes must cover every scope the route needs
// ([check.Route404], [check.Scopes]).
func (p *Proxy) authorize(x *exchange) *Error {
	if err := check.Route404(x.route != nil, x.pathOnly); err != nil {
		return err
	}
	return checkScopes(x)
}

func checkScopes(x *exchange) *Error { return check.Scopes(x.route.Scopes, x.claims) }
