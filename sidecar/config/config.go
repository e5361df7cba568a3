// Package config is keyless's YAML configuration: the issuer (embedded
// authorization server) with its clients and sandbox users, and placeholder
// sections the proxy and policy components fill in.
//
// Use [Load] to read a file (unknown fields are errors, so typos surface),
// or [Sandbox] for the `keyless dev` defaults. [Config.Validate] reports
// every problem at once.
package config

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyless-dev/keyless/sidecar/internal/strictyaml"
)

// Defaults and caps for [Issuer] (docs/security.md#windows): access tokens
// live 10 minutes by default and never more than an hour.
const (
	DefaultAccessTokenTTL  = 10 * time.Minute
	MaxAccessTokenTTL      = time.Hour
	DefaultRefreshTokenTTL = 24 * time.Hour
	MaxRefreshTokenTTL     = 90 * 24 * time.Hour
	DefaultDeviceCodeTTL   = 10 * time.Minute
	MaxDeviceCodeTTL       = 30 * time.Minute
	DefaultPollInterval    = 5 * time.Second
)

// Config is a keyless configuration file.
type Config struct {
	// Issuer configures the embedded authorization server.
	Issuer Issuer `yaml:"issuer"`
	// Clients are the apps allowed to ask for tokens.
	Clients []Client `yaml:"clients"`
	// Users are the sandbox users who can sign in on the /device page.
	Users []User `yaml:"users"`
	// DB, when set, is the PostgreSQL database (postgres://...) holding
	// the issuer's state, shared by `keyless serve` replicas
	// (docs/deployment-ha.md); empty keeps the embedded bbolt file in the
	// data directory. --db and $KEYLESS_DB take precedence.
	DB string `yaml:"db,omitempty"`
	// Login adds upstream identity providers to the /device page.
	Login Login `yaml:"login"`

	// Proxy, Policy and Vending are owned by the proxy, policy and token
	// vending components. They are kept as raw YAML here so this package
	// never rejects what those components accept; each decodes its own
	// section (node.Decode) and validates it.
	Proxy   yaml.Node `yaml:"proxy,omitempty"`
	Policy  yaml.Node `yaml:"policy,omitempty"`
	Vending yaml.Node `yaml:"vending,omitempty"`
}

// Issuer configures the authorization server. Zero durations take the
// defaults above.
type Issuer struct {
	// URL is the public issuer URL (iss, and the base of every endpoint and
	// of every DPoP htu the server expects). Empty: the listen URL, which
	// `keyless dev` fills in.
	URL string `yaml:"url"`
	// Audience is the aud of access tokens from the device flow; empty
	// means the issuer URL (the vending service lives there).
	Audience string `yaml:"audience"`
	// AccessTokenTTL is the access-token lifetime; at most 1 h.
	AccessTokenTTL Duration `yaml:"access_token_ttl"`
	// RefreshTokenTTL is the absolute lifetime of a refresh-token family:
	// rotation never extends it.
	RefreshTokenTTL Duration `yaml:"refresh_token_ttl"`
	// DeviceCodeTTL is how long a device code may be approved and redeemed.
	DeviceCodeTTL Duration `yaml:"device_code_ttl"`
	// PollInterval is the initial polling interval given to devices.
	PollInterval Duration `yaml:"poll_interval"`
	// TrustedProxies are the reverse proxies (load balancers, ingress) in
	// front of the issuer, as IP addresses or CIDR prefixes. A request
	// whose peer is one of them is counted against the client address
	// they forward (X-Forwarded-For or Forwarded, RFC 7239) for the
	// per-source limits (docs/security.md#limits). Empty: the peer address
	// only, and forwarding headers are ignored, so a client can never
	// choose its own source.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// ParseTrustedProxy reads one issuer.trusted_proxies entry: an IP address
// (a single host) or a CIDR prefix, IPv4 or IPv6. A prefix that covers
// every address (/0) is refused: it would let any client name its own
// source. So are zones and IPv4-mapped IPv6 forms (write the IPv4 form).
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		v, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
		p = v.Masked()
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	switch {
	case p.Addr().Is4In6():
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 address: write the IPv4 form", s)
	case p.Bits() == 0:
		return netip.Prefix{}, fmt.Errorf("%q trusts every address: any client could choose its own source", s)
	}
	return p, nil
}

// TrustedProxyPrefixes parses TrustedProxies (see [ParseTrustedProxy]);
// nil when there are none.
func (is Issuer) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for i, s := range is.TrustedProxies {
		p, err := ParseTrustedProxy(s)
		if err != nil {
			return nil, fmt.Errorf("issuer.trusted_proxies[%d]: %w", i, err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// Client is an app registered with the issuer.
type Client struct {
	// ID is the client_id.
	ID string `yaml:"id"`
	// Name is shown on the consent page; empty means ID.
	Name string `yaml:"name"`
	// Scopes the client may be granted.
	Scopes []string `yaml:"scopes"`
	// DefaultScopes are granted when a request names none; they must be a
	// subset of Scopes.
	DefaultScopes []string `yaml:"default_scopes"`
	// SecretHash, when set, makes the client confidential: a bcrypt hash of
	// its secret, presented with HTTP Basic. Only confidential clients may
	// introspect tokens. Empty: a public client (a browser micro app).
	SecretHash string `yaml:"secret_hash"`
}

// User is a sandbox user of the /device page.
type User struct {
	// Name is the user name and the sub of the user's tokens.
	Name string `yaml:"name"`
	// PasswordHash is a bcrypt hash ("$2a$", "$2b$" or "$2y$"); plain-text
	// passwords are never accepted in configuration.
	PasswordHash string `yaml:"password_hash"`
}

// Duration is a time.Duration written in YAML as "10m", "1h30m".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Or returns d, or def when d is zero.
func (d Duration) Or(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// maxFileSize bounds a config file; a real one is a few kilobytes.
const maxFileSize = 4 << 20

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("config: %s is larger than %d bytes", path, maxFileSize)
	}
	var c Config
	// Errors in the file's words, with its name and line:
	// `keyless.yaml:3: clients[0]: unknown field "scope" (did you mean "scopes"?)`.
	if err := strictyaml.Decode(path, b, &c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return &c, nil
}

// Parse decodes YAML strictly (unknown fields and values of the wrong
// kind are errors, with their lines) and validates it.
func Parse(b []byte) (*Config, error) {
	var c Config
	if err := strictyaml.Decode("", b, &c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Client returns the client with this id, or nil.
func (c *Config) Client(id string) *Client {
	for i := range c.Clients {
		if c.Clients[i].ID == id {
			return &c.Clients[i]
		}
	}
	return nil
}

// User returns the user with this name, or nil.
func (c *Config) User(name string) *User {
	for i := range c.Users {
		if c.Users[i].Name == name {
			return &c.Users[i]
		}
	}
	return nil
}

// Validate reports every problem in c, joined with errors.Join.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	is := c.Issuer
	if is.URL != "" {
		if err := checkIssuerURL(is.URL); err != nil {
			add("issuer.url: %v", err)
		}
	}
	if is.Audience != "" {
		if u, err := url.Parse(is.Audience); err != nil || !u.IsAbs() {
			add("issuer.audience: not an absolute URI")
		}
	}
	durs := []struct {
		name     string
		v        Duration
		min, max time.Duration
	}{
		{"access_token_ttl", is.AccessTokenTTL, 10 * time.Second, MaxAccessTokenTTL},
		{"refresh_token_ttl", is.RefreshTokenTTL, time.Minute, MaxRefreshTokenTTL},
		{"device_code_ttl", is.DeviceCodeTTL, 30 * time.Second, MaxDeviceCodeTTL},
		{"poll_interval", is.PollInterval, time.Second, time.Minute},
	}
	for _, d := range durs {
		if d.v != 0 && (time.Duration(d.v) < d.min || time.Duration(d.v) > d.max) {
			add("issuer.%s: %v is outside %v..%v", d.name, time.Duration(d.v), d.min, d.max)
		}
	}
	for i, tp := range is.TrustedProxies {
		if _, err := ParseTrustedProxy(tp); err != nil {
			add("issuer.trusted_proxies[%d]: %v", i, err)
		}
	}

	seen := map[string]bool{}
	for i, cl := range c.Clients {
		where := fmt.Sprintf("clients[%d]", i)
		if cl.ID != "" {
			where = fmt.Sprintf("clients[%d] (%s)", i, cl.ID)
		}
		switch {
		case cl.ID == "":
			add("%s: id is required", where)
		case !validToken(cl.ID):
			add("%s: id must be printable ASCII without spaces, quotes or colons", where)
		case seen[cl.ID]:
			add("%s: duplicate id", where)
		}
		seen[cl.ID] = true
		if len(cl.Scopes) == 0 {
			add("%s: scopes: at least one scope is required", where)
		}
		for _, s := range cl.Scopes {
			if !validScope(s) {
				add("%s: scopes: %q is not a valid scope token", where, s)
			}
		}
		for _, s := range cl.DefaultScopes {
			if !slices.Contains(cl.Scopes, s) {
				add("%s: default_scopes: %q is not in scopes", where, s)
			}
		}
		if cl.SecretHash != "" && !isBcrypt(cl.SecretHash) {
			add("%s: secret_hash must be a bcrypt hash", where)
		}
	}
	seenU := map[string]bool{}
	for i, u := range c.Users {
		where := fmt.Sprintf("users[%d]", i)
		switch {
		case u.Name == "":
			add("%s: name is required", where)
		case !validToken(u.Name):
			add("%s: name must be printable ASCII without spaces, quotes or colons", where)
		case seenU[u.Name]:
			add("%s: duplicate name %q", where, u.Name)
		}
		seenU[u.Name] = true
		if !isBcrypt(u.PasswordHash) {
			add("%s: password_hash must be a bcrypt hash (plain-text passwords are not accepted)", where)
		}
	}
	if err := c.Login.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func checkIssuerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("scheme must be https (http only for loopback)")
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return errors.New("http is allowed only for loopback hosts")
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return errors.New("must be scheme://host[:port][/path] without userinfo, query or fragment")
	case strings.HasSuffix(u.Path, "/"):
		return errors.New("must not end with /")
	}
	return nil
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "::1" || strings.HasPrefix(h, "127.")
}

// validScope: RFC 6749 section 3.3 scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != 0x21 && (c < 0x23 || c > 0x5b) && (c < 0x5d || c > 0x7e) {
			return false
		}
	}
	return true
}

func validToken(s string) bool { return validScope(s) && !strings.Contains(s, ":") && len(s) <= 128 }

func isBcrypt(h string) bool {
	return len(h) == 60 && (strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$"))
}
