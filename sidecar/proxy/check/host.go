package check

import (
	"net"
	"net/url"
	"strings"
)

// Hosts are the hosts a request may name: PublicURL's host and the
// configured aliases (Config.Hosts), compared case-insensitively, with the
// scheme's default port equal to no port.
type Hosts struct {
	defaultPort string
	allowed     map[string]bool // "name:port", name lowercased
}

// NewHosts compiles PublicURL's host and the aliases; entries that do not
// parse are skipped ([Config.Validate] reports them).
func NewHosts(publicURL string, aliases []string) *Hosts {
	u, _ := url.Parse(publicURL)
	h := &Hosts{defaultPort: "443", allowed: make(map[string]bool)}
	if u != nil && u.Scheme == "http" {
		h.defaultPort = "80"
	}
	if u != nil {
		if k, ok := h.key(u.Host); ok {
			h.allowed[k] = true
		}
	}
	for _, a := range aliases {
		if k, ok := h.key(a); ok {
			h.allowed[k] = true
		}
	}
	return h
}

// key is the comparable form of a host[:port]: lowercased name (one
// trailing dot dropped), explicit port.
func (h *Hosts) key(hostport string) (string, bool) {
	if hostport == "" || strings.ContainsAny(hostport, "/?#@ \t\\") {
		return "", false
	}
	name, port := hostport, h.defaultPort
	if n, p, err := net.SplitHostPort(hostport); err == nil {
		name, port = n, p
	} else if strings.Contains(strings.Trim(hostport, "[]"), ":") && !strings.HasPrefix(hostport, "[") {
		return "", false // a bare IPv6 literal or a stray colon
	}
	name = strings.TrimSuffix(strings.Trim(name, "[]"), ".")
	if name == "" || port == "" {
		return "", false
	}
	return strings.ToLower(name) + ":" + port, true
}

// Check refuses a request whose host (Host, :authority, or the authority
// of an absolute-form target, which net/http puts in Request.Host) is not
// one of h: 421 Misdirected Request, so a request meant for another
// virtual host is never forwarded to this one's upstream.
//
// https://www.rfc-editor.org/rfc/rfc9110#section-15.5.20
func (h *Hosts) Check(host string) *Error {
	if k, ok := h.key(host); ok && h.allowed[k] {
		return nil
	}
	return &Error{Code: CodeMisdirected, Msg: "this server does not serve the requested host", Rule: "host"}
}

// ValidHost reports whether s is a host[:port] usable in Config.Hosts.
func ValidHost(s string) bool {
	_, ok := (&Hosts{defaultPort: "443"}).key(s)
	return ok
}
