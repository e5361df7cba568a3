package check

import (
	"fmt"
	"mime"
	"strings"

	"github.com/keyless-dev/keyless/sidecar/token/atjwt"
)

// ForwardPath is the path the upstream receives: the canonical path
// without the route's StripPrefix ("/" when nothing is left). The proof's
// htu still uses the full path.
func ForwardPath(stripPrefix, path string) string {
	if stripPrefix != "" {
		path = strings.TrimPrefix(path, stripPrefix)
		if path == "" {
			path = "/"
		}
	}
	return path
}

// Identity is the identity headers injected on a forwarded request, as
// (name, value) pairs; they are set after the inbound headers were
// stripped ([RequestStripList]), so a client can neither forge nor remove
// them.
//
// The issuer header carries the name of the external issuer the subject
// comes from (docs/identity-providers.md); it is empty, and so not sent
// (the client's copy is stripped all the same), for keyless's own users.
func Identity(h Headers, c *atjwt.Claims) [][2]string {
	id := [][2]string{
		{h.Subject, c.Subject},
		{h.Client, c.ClientID},
		{h.Scope, strings.Join(c.Scope, " ")},
		{h.Lease, c.LeaseID},
	}
	if c.IdP != "" {
		id = append(id, [2]string{h.Issuer, c.IdP})
	}
	return id
}

// BodyLength applies a route's body cap (413) to a known body length.
// limit is Route.MaxBodyBytes after defaults: negative means no body.
func BodyLength(limit, n int64) *Error {
	if limit < 0 || n > limit {
		return &Error{Code: CodeBodyTooLarge, Msg: "request body too large", Rule: "body.size"}
	}
	return nil
}

// ContentTypes is a route's content-type allow-list, compiled; nil allows
// any.
type ContentTypes map[string]bool

// NewContentTypes compiles Route.ContentTypes; nil for an empty list.
func NewContentTypes(cts []string) ContentTypes {
	if len(cts) == 0 {
		return nil
	}
	m := make(ContentTypes, len(cts))
	for _, ct := range cts {
		m[strings.ToLower(ct)] = true
	}
	return m
}

// Check refuses a body whose Content-Type is not allowed (415).
func (m ContentTypes) Check(contentType string) *Error {
	if m == nil {
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || !m[strings.ToLower(mt)] {
		return &Error{Code: CodeUnsupportedMedia, Msg: "content type not allowed", Rule: "body.type"}
	}
	return nil
}

// Origins are the CORS origins per app (client_id).
type Origins struct {
	apps map[string]map[string]bool
	any  map[string]bool
}

// NewOrigins compiles CORS.Apps.
func NewOrigins(c CORS) *Origins {
	o := &Origins{apps: make(map[string]map[string]bool), any: make(map[string]bool)}
	for app, os := range c.Apps {
		o.apps[app] = make(map[string]bool)
		for _, s := range os {
			o.apps[app][s] = true
			o.any[s] = true
		}
	}
	return o
}

// Any reports whether origin belongs to some app: enough for a preflight,
// before a lease names the app.
func (o *Origins) Any(origin string) bool { return o.any[origin] }

// App reports whether origin is one of app's origins.
func (o *Origins) App(app, origin string) bool { return o.apps[app][origin] }

// Preflight refuses a CORS preflight from an origin of no app (403).
func (o *Origins) Preflight(origin string) *Error {
	if !o.Any(origin) {
		// The log says which origin and where to allow it; the client
		// sees fixed text only.
		return &Error{Code: CodeOriginNotAllowed, Msg: "origin not allowed", Rule: "cors.preflight",
			Err: fmt.Errorf("origin %q is in no app's cors.apps list of the proxy config (keyless dev: --allow-origin %s)", origin, origin)}
	}
	return nil
}

// Check refuses a request whose Origin is not one of the lease's app
// origins: per-app CORS, and Cross-Site WebSocket Hijacking protection on
// upgrades (RFC 6455 section 10.2). Requests without Origin (non-browser
// clients) pass.
func (o *Origins) Check(app, origin string) *Error {
	if origin == "" || o.App(app, origin) {
		return nil
	}
	return &Error{Code: CodeOriginNotAllowed, Msg: "origin not allowed for this app", Rule: "cors.origin",
		Err: fmt.Errorf("origin %q is not in cors.apps.%s of the proxy config (keyless dev: --allow-origin %s)", origin, app, origin)}
}

// Allow reports whether the response may carry CORS headers for origin:
// the lease's app origins once a lease is known (app != "" or known), any
// app's origin before.
func (o *Origins) Allow(origin string, app string, known bool) bool {
	if origin == "" {
		return false
	}
	if known {
		return o.App(app, origin)
	}
	return o.Any(origin)
}

// PreflightAllowMethods and PreflightAllowHeaders answer a preflight. The
// DPoP header forces the preflight: it is not a CORS-safelisted request
// header (https://fetch.spec.whatwg.org/#cors-safelisted-request-header).
const (
	PreflightAllowMethods = "GET, HEAD, POST, PUT, PATCH, DELETE"
	PreflightAllowHeaders = "Authorization, DPoP, Content-Type"
)
