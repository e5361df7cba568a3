package proxy

import (
	"errors"
	"net/http"
	"strings"
)

// pattern is a compiled route path: literal segments, "*" for exactly one
// non-empty segment, and an optional final "**" for zero or more segments.
type pattern struct {
	segs []string // without the final "**"
	rest bool     // ends in "**"
}

func compilePattern(p string) (pattern, error) {
	if p == "" || p[0] != '/' {
		return pattern{}, errors.New("path pattern must start with /")
	}
	segs := strings.Split(p[1:], "/")
	var pt pattern
	if n := len(segs); segs[n-1] == "**" {
		pt.rest = true
		segs = segs[:n-1]
	}
	for i, s := range segs {
		switch {
		case s == "**":
			return pattern{}, errors.New("** is only allowed as the last segment")
		case s == "*":
		case strings.Contains(s, "*"):
			return pattern{}, errors.New("* must be a whole segment")
		case s == "" && i != len(segs)-1:
			return pattern{}, errors.New("path pattern has an empty segment")
		case s == "" && pt.rest:
			return pattern{}, errors.New("path pattern has an empty segment")
		default:
			if c, err := CanonicalPath("/" + s); err != nil || c != "/"+s {
				return pattern{}, errors.New("path pattern segment " + s + " is not canonical")
			}
		}
	}
	pt.segs = segs
	return pt, nil
}

// literalPrefix is the pattern's leading literal segments as a path.
func literalPrefix(p string) string {
	var b strings.Builder
	for _, s := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if s == "*" || s == "**" || s == "" {
			break
		}
		b.WriteByte('/')
		b.WriteString(s)
	}
	return b.String()
}

// match reports whether the canonical path p matches. Segments compare
// exactly: case-sensitive, no trailing-slash folding.
func (pt *pattern) match(p string) bool {
	rest := p[1:] // canonical paths start with "/"
	done := false // the path has no segment left
	for _, s := range pt.segs {
		if done {
			return false
		}
		var seg string
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[:i], rest[i+1:]
		} else {
			seg, done = rest, true
		}
		if s == "*" {
			if seg == "" {
				return false
			}
		} else if s != seg {
			return false
		}
	}
	return pt.rest || done
}

// methodAllowed reports whether the route allows method. GET allows HEAD.
func methodAllowed(methods []string, method string) bool {
	for _, m := range methods {
		if m == method || m == "*" || (m == http.MethodGet && method == http.MethodHead) {
			return true
		}
	}
	return false
}

// router holds the compiled routes in configuration order.
type router struct {
	routes []*route
}

// lookup returns the first route matching path and method. pathOnly reports
// that a route matched the path but none allowed the method (405).
func (rt *router) lookup(method, path string) (r *route, pathOnly bool) {
	for _, c := range rt.routes {
		if !c.pattern.match(path) {
			continue
		}
		if methodAllowed(c.Methods, method) {
			return c, false
		}
		pathOnly = true
	}
	return nil, pathOnly
}
