package check

import "strings"

// HeaderMatcher matches header names in any spelling: ASCII case and "_"
// versus "-" are ignored, because WSGI, PHP and CGI backends fold
// "X_Keyless_Sub" onto "X-Keyless-Sub" (docs/security.md#a2,
// oauth2-proxy CVE-2025-64484).
type HeaderMatcher struct {
	names    []string // whole names, lowercase with "-"
	prefixes []string // name prefixes, lowercase with "-"
}

func norm(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

// AddName adds whole header names.
func (m *HeaderMatcher) AddName(n ...string) {
	for _, s := range n {
		m.names = append(m.names, norm(s))
	}
}

// AddPrefix adds header name prefixes.
func (m *HeaderMatcher) AddPrefix(p ...string) {
	for _, s := range p {
		m.prefixes = append(m.prefixes, norm(s))
	}
}

// foldEq compares a header name byte with a normalized byte.
func foldEq(c, n byte) bool {
	if 'A' <= c && c <= 'Z' {
		c += 'a' - 'A'
	} else if c == '_' {
		c = '-'
	}
	return c == n
}

func foldHasPrefix(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if !foldEq(s[i], prefix[i]) {
			return false
		}
	}
	return true
}

// Match reports whether name is matched, in any spelling.
func (m *HeaderMatcher) Match(name string) bool {
	for _, n := range m.names {
		if len(name) == len(n) && foldHasPrefix(name, n) {
			return true
		}
	}
	for _, p := range m.prefixes {
		if foldHasPrefix(name, p) {
			return true
		}
	}
	return false
}

// DeleteMatching removes every header m matches, keeping those in keep.
func (m *HeaderMatcher) DeleteMatching(h map[string][]string, keep *HeaderMatcher) {
	for name := range h {
		if m.Match(name) && (keep == nil || !keep.Match(name)) {
			delete(h, name)
		}
	}
}

// RequestStripList is every inbound header never forwarded: the client's
// credentials, the proxy's own namespace and identity headers, forwarding
// and client-IP headers (replaced by the proxy's own), URL-rewrite and
// method-override headers, and upgrade negotiation (re-added only for
// WebSocket). Cookies are stripped separately, per route.
func RequestStripList(h Headers) HeaderMatcher {
	var m HeaderMatcher
	m.AddName("Authorization", "Proxy-Authorization", "DPoP",
		h.Subject, h.Client, h.Scope, h.Lease, h.Issuer,
		// docs/security.md#proxy: client IP is computed by the proxy (overwrite, not append).
		"Forwarded", "X-Real-IP", "X-Client-IP", "True-Client-IP", "CF-Connecting-IP", "X-Cluster-Client-IP",
		// URL rewriting by middleware (traefik PR #11267; RFC 9700 section 4.13).
		"X-Original-URL", "X-Original-URI", "X-Rewrite-URL", "X-Envoy-Original-Path",
		// Method overrides: the route was authorized for the request method.
		"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
		// Upgrades other than WebSocket are never forwarded (h2c, docs/security.md#a14).
		"Upgrade", "Connection", "HTTP2-Settings", "Trailer", "Keep-Alive", "Proxy-Connection")
	m.AddPrefix(h.Prefix, "X-Forwarded-", "X-Envoy-")
	m.AddName(h.Scrub...)
	return m
}

// ResponseStripList is every upstream response header never returned:
// headers that leak the backend, CORS and nonce headers (the proxy sets its
// own) and the proxy's namespace.
func ResponseStripList(h Headers) HeaderMatcher {
	var m HeaderMatcher
	m.AddName("Server", "X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version", "X-Runtime",
		"X-Backend-Server", "Via", "DPoP-Nonce", "X-Envoy-Upstream-Service-Time")
	m.AddPrefix(h.Prefix, "Access-Control-", "X-Debug-")
	m.AddName(h.StripResponse...)
	return m
}

// InNamespace reports whether header name starts with prefix, in any
// spelling.
func InNamespace(name, prefix string) bool { return foldHasPrefix(name, norm(prefix)) }
