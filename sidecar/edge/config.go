package edge

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/proxy/check"
)

// Environment names the Worker reads (wrangler.toml [vars], or secrets set
// with `wrangler secret put`).
const (
	// EnvProxy holds the proxy configuration: the `proxy:` section of
	// keyless.yaml, as YAML or JSON text, or as a [vars] table (which the
	// Worker receives as an object and passes on as JSON). Same field names,
	// defaults and validation as `keyless proxy --config`.
	EnvProxy = "KEYLESS_PROXY"
	// EnvRevokeToken is a secret: the bearer token the issuer presents to
	// push revocations to POST /.keyless/revocations. Empty disables the
	// endpoint.
	EnvRevokeToken = "KEYLESS_REVOKE_TOKEN"
	// EnvNonceKey is a secret of at least 32 bytes: the server-nonce HMAC
	// key, required when dpop.nonce.enabled (the edge has no key_file).
	EnvNonceKey = "KEYLESS_NONCE_KEY"
	// EnvRevocationTTL is how long one isolate reuses a "not revoked"
	// answer for one lease (a Go duration, "0s" to ask on every request);
	// empty means DefaultRevocationTTL. It bounds how late a revocation
	// reaches the edge.
	EnvRevocationTTL = "KEYLESS_REVOCATION_TTL"
	// EnvRevocationFeed is the issuer's revocation feed, the URL its
	// metadata advertises as keyless_revocation_feed_endpoint (normally
	// ISSUER/revocations; docs/revocation.md). Set, the Worker's
	// revocation Durable Object follows the issuer's log through it, as
	// `keyless proxy --feed-secret-file` does, and pushes become an
	// optimisation; empty, the Worker knows only what is pushed.
	EnvRevocationFeed = "KEYLESS_REVOCATION_FEED"
	// EnvRevocationFeedSecret is a secret: the feed's shared secret (the
	// issuer's DATA/revocation-feed.secret). Required with the feed.
	EnvRevocationFeedSecret = "KEYLESS_REVOCATION_FEED_SECRET"
	// EnvRevocationFeedInterval is how often, at most, the Worker polls
	// the feed (from the request path); empty means
	// DefaultRevocationFeedInterval. One number and unit: ms, s or m.
	EnvRevocationFeedInterval = "KEYLESS_REVOCATION_FEED_INTERVAL"
	// EnvRevocationFeedMaxStale is the staleness bound: past it without an
	// answer from the feed, every request that needs a revocation check
	// is 503; empty means DefaultRevocationFeedMaxStale. One number and
	// unit: ms, s or m.
	EnvRevocationFeedMaxStale = "KEYLESS_REVOCATION_FEED_MAX_STALE"
)

// Defaults of the feed's timing, the native proxy's (revfeed.DefaultMaxStale).
const (
	DefaultRevocationFeedInterval = time.Second
	DefaultRevocationFeedMaxStale = 10 * time.Second
)

// feedTimeout is how long one poll of the feed may take (FEED_TIMEOUT_MS
// in worker.mjs): the bound must leave room for an interval and a poll.
const feedTimeout = time.Second

// RevocationPath is where the issuer pushes revocations.
const RevocationPath = "/.keyless/revocations"

// DefaultRevocationTTL is the default of [EnvRevocationTTL].
const DefaultRevocationTTL = 2 * time.Second

// Config is the Worker's configuration, read from its environment.
type Config struct {
	// Proxy is the sidecar's configuration, defaults applied and validated.
	Proxy check.Config
	// Credentials holds each upstream's credential value by upstream name,
	// read from the secret named by credential.value_env.
	Credentials map[string]string
	// RevokeToken authorizes revocation pushes; empty disables them.
	RevokeToken string
	// NonceKey is the server-nonce key when nonces are on.
	NonceKey []byte
	// RevocationFeed is the issuer's revocation feed; empty when the
	// Worker only receives pushes. The Durable Object reads it, its
	// secret and its timing from the environment itself (worker.mjs);
	// they are checked here so a wrong one fails the start, not a poll.
	RevocationFeed string
	// RevocationFeedInterval and RevocationFeedMaxStale are the feed's
	// timing, defaults applied.
	RevocationFeedInterval, RevocationFeedMaxStale time.Duration
	// RevocationTTL is the isolate's cache of "not revoked" answers; zero
	// asks the revocation store on every request.
	RevocationTTL time.Duration
}

// LoadConfig reads the configuration through getenv (the Worker's env:
// vars and secrets) and reports every problem at once. What the edge
// cannot do is refused rather than ignored: credential.value_file (use
// value_env and a secret), dpop.nonce.key_file (use KEYLESS_NONCE_KEY),
// token.issuer and token.jwks_url are required.
func LoadConfig(getenv func(string) string) (*Config, error) {
	raw := getenv(EnvProxy)
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("edge: %s is not set", EnvProxy)
	}
	pc, err := check.ParseConfig([]byte(raw))
	if err != nil {
		return nil, fmt.Errorf("edge: %s: %w", EnvProxy, err)
	}
	pc = pc.WithDefaults()
	var errs []error
	if err := pc.Validate(); err != nil {
		errs = append(errs, err)
	}
	c := &Config{Proxy: pc, Credentials: map[string]string{}, RevokeToken: getenv(EnvRevokeToken), RevocationTTL: DefaultRevocationTTL}
	if pc.Token.Issuer == "" || pc.Token.JWKSURL == "" {
		errs = append(errs, errors.New("edge: token.issuer and token.jwks_url are required"))
	}
	for name, u := range pc.Upstreams {
		cr := u.Credential
		if cr == nil {
			continue
		}
		if cr.ValueFile != "" {
			errs = append(errs, fmt.Errorf("edge: upstreams[%s]: credential.value_file is not available at the edge; use value_env and a Worker secret", name))
			continue
		}
		v := getenv(cr.ValueEnv)
		if v == "" {
			errs = append(errs, fmt.Errorf("edge: upstreams[%s]: secret %s is not set", name, cr.ValueEnv))
		}
		c.Credentials[name] = cr.Prefix + v
	}
	if pc.DPoP.Nonce.Enabled {
		if pc.DPoP.Nonce.KeyFile != "" {
			errs = append(errs, errors.New("edge: dpop.nonce.key_file is not available at the edge; set the "+EnvNonceKey+" secret"))
		}
		c.NonceKey = []byte(getenv(EnvNonceKey))
		if len(c.NonceKey) < 32 {
			errs = append(errs, errors.New("edge: dpop.nonce.enabled needs the "+EnvNonceKey+" secret, at least 32 bytes"))
		}
	}
	if s := getenv(EnvRevocationTTL); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > time.Minute {
			errs = append(errs, fmt.Errorf("edge: %s %q must be a duration between 0s and 1m", EnvRevocationTTL, s))
		}
		c.RevocationTTL = d
	}
	errs = append(errs, c.loadFeed(getenv)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// loadFeed reads and checks the revocation feed's settings.
func (c *Config) loadFeed(getenv func(string) string) []error {
	var errs []error
	c.RevocationFeedInterval, c.RevocationFeedMaxStale = DefaultRevocationFeedInterval, DefaultRevocationFeedMaxStale
	for _, d := range []struct {
		name     string
		dst      *time.Duration
		min, max time.Duration
	}{
		{EnvRevocationFeedInterval, &c.RevocationFeedInterval, 100 * time.Millisecond, time.Minute},
		{EnvRevocationFeedMaxStale, &c.RevocationFeedMaxStale, time.Second, 10 * time.Minute},
	} {
		s := getenv(d.name)
		if s == "" {
			continue
		}
		v, ok := simpleDuration(s)
		if !ok || v < d.min || v > d.max {
			errs = append(errs, fmt.Errorf("edge: %s %q must be one number and unit (ms, s, m) between %s and %s", d.name, s, d.min, d.max))
			continue
		}
		*d.dst = v
	}
	c.RevocationFeed = getenv(EnvRevocationFeed)
	if c.RevocationFeed == "" {
		return errs
	}
	if u, err := url.Parse(c.RevocationFeed); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("edge: %s must be an http(s) URL", EnvRevocationFeed))
	}
	if getenv(EnvRevocationFeedSecret) == "" {
		errs = append(errs, fmt.Errorf("edge: %s needs the %s secret", EnvRevocationFeed, EnvRevocationFeedSecret))
	}
	if c.RevocationFeedMaxStale <= c.RevocationFeedInterval+feedTimeout {
		errs = append(errs, fmt.Errorf("edge: %s must exceed %s plus one poll's %s", EnvRevocationFeedMaxStale, EnvRevocationFeedInterval, feedTimeout))
	}
	return errs
}

// simpleDuration reads the durations worker.mjs reads too: one decimal
// number and one unit, ms, s or m ("500ms", "1.5s", "2m").
// maxSimpleDuration bounds what [simpleDuration] accepts.
const maxSimpleDuration = 24 * time.Hour

func simpleDuration(s string) (time.Duration, bool) {
	unit := time.Minute
	switch {
	case strings.HasSuffix(s, "ms"):
		s, unit = s[:len(s)-2], time.Millisecond
	case strings.HasSuffix(s, "s"):
		s, unit = s[:len(s)-1], time.Second
	case strings.HasSuffix(s, "m"):
		s = s[:len(s)-1]
	default:
		return 0, false
	}
	// Digits, optionally a dot and more digits: what the JS pattern
	// /^\d+(\.\d+)?$/ accepts (no sign, exponent, Inf or NaN).
	whole, frac, dot := strings.Cut(s, ".")
	if !digits(whole) || (dot && !digits(frac)) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	// A day is far past any sensible poll interval or staleness bound, and
	// keeps the product from overflowing time.Duration.
	if err != nil || f*float64(unit) > float64(maxSimpleDuration) {
		return 0, false
	}
	return time.Duration(f * float64(unit)), true
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
