package proxy

import "github.com/keyless-dev/keyless/sidecar/proxy/check"

// pattern is a compiled route path ([check.Pattern]).
type pattern struct{ check.Pattern }

func compilePattern(p string) (pattern, error) {
	pt, err := check.CompilePattern(p)
	return pattern{pt}, err
}

func (pt *pattern) match(p string) bool { return pt.Match(p) }

// router holds the compiled routes in configuration order.
type router struct {
	routes []*route
}

// lookup returns the first route matching path and method ([check.Lookup]).
// pathOnly reports that a route matched the path but none allowed the
// method (405).
func (rt *router) lookup(method, path string) (r *route, pathOnly bool) {
	r, _, pathOnly = check.Lookup(rt.routes, method, path, func(c *route) (*check.Pattern, []string) {
		return &c.pattern.Pattern, c.Methods
	})
	return r, pathOnly
}
