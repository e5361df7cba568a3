package check

import (
	"errors"
	"strings"
)

// Pattern is a compiled route path: literal segments, "*" for exactly one
// non-empty segment, and an optional final "**" for zero or more segments.
type Pattern struct {
	segs []string // without the final "**"
	rest bool     // ends in "**"
}

// CompilePattern compiles a route path pattern (Route.Path).
func CompilePattern(p string) (Pattern, error) {
	if p == "" || p[0] != '/' {
		return Pattern{}, errors.New("path pattern must start with /")
	}
	segs := strings.Split(p[1:], "/")
	var pt Pattern
	if n := len(segs); segs[n-1] == "**" {
		pt.rest = true
		segs = segs[:n-1]
	}
	for i, s := range segs {
		switch {
		case s == "**":
			return Pattern{}, errors.New("** is only allowed as the last segment")
		case s == "*":
		case strings.Contains(s, "*"):
			return Pattern{}, errors.New("* must be a whole segment")
		case s == "" && i != len(segs)-1:
			return Pattern{}, errors.New("path pattern has an empty segment")
		case s == "" && pt.rest:
			return Pattern{}, errors.New("path pattern has an empty segment")
		default:
			if c, err := CanonicalPath("/" + s); err != nil || c != "/"+s {
				return Pattern{}, errors.New("path pattern segment " + s + " is not canonical")
			}
		}
	}
	pt.segs = segs
	return pt, nil
}

// LiteralPrefix is the pattern's leading literal segments as a path.
func LiteralPrefix(p string) string {
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

// Match reports whether the canonical path p matches. Segments compare
// exactly: case-sensitive, no trailing-slash folding.
func (pt *Pattern) Match(p string) bool {
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

// MethodAllowed reports whether the route allows method. GET allows HEAD.
func MethodAllowed(methods []string, method string) bool {
	for _, m := range methods {
		if m == method || m == "*" || (m == "GET" && method == "HEAD") {
			return true
		}
	}
	return false
}

// Lookup returns the first of routes whose pattern matches the canonical
// path and whose methods allow method; at gives a route's pattern and
// methods. pathOnly reports that a route matched the path but none allowed
// the method (405). ok is false when no route matched.
func Lookup[R any](routes []R, method, path string, at func(R) (*Pattern, []string)) (r R, ok, pathOnly bool) {
	for _, c := range routes {
		pt, methods := at(c)
		if !pt.Match(path) {
			continue
		}
		if MethodAllowed(methods, method) {
			return c, true, false
		}
		pathOnly = true
	}
	return r, false, pathOnly
}
