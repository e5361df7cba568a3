package authserver

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// maxForwardedHops bounds the list elements read from a forwarding header;
// a longer chain is not believed (the peer address is used).
const maxForwardedHops = 32

// clientIP is the address a request is counted against by the per-source
// limits (docs/security.md#source-address): remoteAddr's host, unless that peer is
// one of the trusted proxies (issuer.trusted_proxies). Then the forwarded
// chain is walked from the right, skipping trusted addresses, and the
// first untrusted one is the client (nginx's real_ip_recursive); when
// every hop is trusted, the leftmost. With no trusted proxies forwarding
// headers are never read, so a client cannot choose its own source.
//
// The chain comes from X-Forwarded-For or from Forwarded's for= parameters
// (RFC 7239 section 4), whichever the request carries. A request with both,
// or neither, is counted against its peer: a proxy that sets one header and
// passes a client's copy of the other through must not let that copy pick
// the source. A malformed element on the walk, an obfuscated or "unknown"
// node (RFC 7239 section 6), or a chain longer than maxForwardedHops also
// gives the peer address: garbage is never believed, and the result is
// never empty when remoteAddr is not.
func clientIP(remoteAddr string, h http.Header, trusted []netip.Prefix) string {
	peer := remoteAddr
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		peer = host
	}
	if len(trusted) == 0 {
		return peer
	}
	pa, err := netip.ParseAddr(peer)
	if err != nil || !isTrusted(pa.WithZone(""), trusted) {
		return peer
	}
	xff, fwd := h.Values("X-Forwarded-For"), h.Values("Forwarded")
	var parse func(string) (netip.Addr, bool)
	var list []string
	switch {
	case len(xff) > 0 && len(fwd) == 0:
		parse, list = parseXFFNode, xff
	case len(fwd) > 0 && len(xff) == 0:
		parse, list = parseForwardedElement, fwd
	default:
		return peer
	}
	// Several fields of one list header are one list, in order (RFC 9110
	// section 5.3).
	elems, ok := splitOutsideQuotes(strings.Join(list, ","), ',', maxForwardedHops)
	if !ok {
		return peer
	}
	var hop netip.Addr
	n := 0
	for i := len(elems) - 1; i >= 0; i-- {
		e := strings.Trim(elems[i], " \t")
		if e == "" {
			continue // empty list elements are ignored (RFC 9110 section 5.6.1.2)
		}
		a, ok := parse(e)
		if !ok {
			return peer
		}
		hop, n = a, n+1
		if !isTrusted(a, trusted) {
			return a.String()
		}
	}
	if n == 0 {
		return peer
	}
	return hop.String() // every hop trusted: the leftmost
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseXFFNode reads one X-Forwarded-For element: an IP address, possibly
// with a port (IPv4:port, [IPv6]:port, [IPv6]), as some load balancers
// write. Zones are refused.
func parseXFFNode(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return plainAddr(a)
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
		return plainAddr(a)
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return plainAddr(ap.Addr())
}

// plainAddr refuses zones and unmaps IPv4-mapped IPv6 addresses, so one
// client has one spelling.
func plainAddr(a netip.Addr) (netip.Addr, bool) {
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parseForwardedElement reads the for= node of one Forwarded element
// (RFC 7239 section 4): forwarded-pairs separated by ";", each
// token "=" (token / quoted-string), names case-insensitive. The element
// must carry for= exactly once, naming an IP address (RFC 7239 section 6:
// IPv4, or a bracketed IPv6 address, which needs quoting), with or without
// a port.
//
// https://www.rfc-editor.org/rfc/rfc7239#section-4
func parseForwardedElement(e string) (netip.Addr, bool) {
	pairs, ok := splitOutsideQuotes(e, ';', 16)
	if !ok {
		return netip.Addr{}, false
	}
	var node string
	found := false
	for _, p := range pairs {
		p = strings.Trim(p, " \t")
		if p == "" {
			continue
		}
		name, value, ok := strings.Cut(p, "=")
		if !ok || !isToken(name) {
			return netip.Addr{}, false
		}
		v, ok := forwardedValue(value)
		if !ok {
			return netip.Addr{}, false
		}
		if strings.EqualFold(name, "for") {
			if found {
				return netip.Addr{}, false
			}
			node, found = v, true
		}
	}
	if !found {
		return netip.Addr{}, false
	}
	// node = nodename [ ":" node-port ] (RFC 7239 section 6).
	if strings.HasPrefix(node, "[") {
		end := strings.IndexByte(node, ']')
		if end < 0 || !validNodePort(node[end+1:]) {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(node[1:end])
		if err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
		return plainAddr(a)
	}
	host, port, _ := strings.Cut(node, ":")
	if port != "" && !validNodePort(":"+port) {
		return netip.Addr{}, false
	}
	if strings.HasSuffix(node, ":") {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

// validNodePort: empty, or ":" followed by 1-5 digits or an obfuscated
// port ("_" then ALPHA / DIGIT / "." / "_" / "-"), RFC 7239 section 6.
func validNodePort(s string) bool {
	if s == "" {
		return true
	}
	if len(s) < 2 || s[0] != ':' {
		return false
	}
	p := s[1:]
	if p[0] == '_' {
		for i := 1; i < len(p); i++ {
			c := p[i]
			if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
				return false
			}
		}
		return len(p) > 1
	}
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// forwardedValue is a token or a quoted-string with its quoting removed
// (RFC 9110 section 5.6.4).
func forwardedValue(v string) (string, bool) {
	if isToken(v) {
		return v, true
	}
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(v)-1; i++ {
		c := v[i]
		switch {
		case c == '\\':
			i++
			if i >= len(v)-1 {
				return "", false
			}
			b.WriteByte(v[i])
		case c == '"' || c < 0x20 && c != '\t' || c == 0x7f:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// splitOutsideQuotes splits s at sep where sep is not inside a
// quoted-string; ok is false for an unterminated quote or more than max
// parts.
func splitOutsideQuotes(s string, sep byte, max int) (parts []string, ok bool) {
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			if len(parts) == max {
				return nil, false
			}
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if quoted || len(parts) == max {
		return nil, false
	}
	return append(parts, s[start:]), true
}

// isToken: 1*tchar (RFC 9110 section 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
