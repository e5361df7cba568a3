package edge

import (
	"errors"
	"fmt"
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
)

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
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}
