package lease

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keyless-dev/keyless/sidecar/federation"
)

// Config is the `vending:` section of the keyless configuration
// (config.Config.Vending):
//
//	vending:
//	  audience: https://api.example.test   # the proxy; aud of leases
//	  issuers:                             # external issuers, besides the embedded one
//	    - name: corp                       # policy rules say issuer: corp
//	      issuer: https://idp.example.com
//	      audience: [keyless, where2eat]   # one of them must be in their tokens' aud
//	      groups_claim: groups
//	      group_map: {"eng-team": [engineering]}
//	      ignore_scope: true               # their scopes do not bound leases
//	      any_client: false                # their client must be the leasing app
//	      renew_past_token: 0s             # renewal stops at the token's exp
//
// Every field of an issuer is described in docs/identity-providers.md;
// the validation fields are [federation.Config]'s. The policy itself is
// the config's `policy:` section ([policy.FromNode]).
type Config struct {
	// Audience is the aud of leases that name no resource: the proxy's
	// public URL. Empty: the caller supplies it (keyless dev uses the
	// proxy's listen URL).
	Audience string `yaml:"audience"`
	// Issuers are the external subject-token issuers trusted.
	Issuers []IssuerConfig `yaml:"issuers"`
}

// MaxRenewPastToken caps IssuerConfig.RenewPastToken.
const MaxRenewPastToken = 24 * time.Hour

// IssuerConfig is one external issuer: how its tokens are validated and
// mapped ([federation.Config]) and what the vending service lets them do.
type IssuerConfig struct {
	federation.Config `yaml:",inline"`
	// AnyClient lets a token issued to one client lease for another app.
	AnyClient bool `yaml:"any_client"`
	// IgnoreScope: the token's scope does not bound the lease's.
	IgnoreScope bool `yaml:"ignore_scope"`
	// RenewPastToken lets a lease family minted from this issuer's token
	// renew for this long past the token's exp (at most
	// MaxRenewPastToken, and never past the policy's renewal limit).
	// Zero: renewal stops at the token's exp; the client then exchanges
	// a fresh token.
	RenewPastToken federation.Duration `yaml:"renew_past_token"`
}

var (
	configFields = []string{"audience", "issuers"}
	issuerFields = append([]string{"any_client", "ignore_scope", "renew_past_token"}, federation.Fields...)
)

// DecodeConfig decodes and validates the vending section; file names the
// config file in "file:line: ..." errors. A nil or empty node is an empty
// Config.
func DecodeConfig(file string, n *yaml.Node) (*Config, error) {
	c := &Config{}
	if n == nil || n.Kind == 0 {
		return c, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: vending must be a mapping", file, n.Line)
	}
	var errs []error
	unknown := func(m *yaml.Node, allowed []string) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := m.Content[i]; !slices.Contains(allowed, k.Value) {
				errs = append(errs, fmt.Errorf("%s:%d: vending: unknown field %q", file, k.Line, k.Value))
			}
		}
	}
	unknown(n, configFields)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "issuers" && n.Content[i+1].Kind == yaml.SequenceNode {
			for _, it := range n.Content[i+1].Content {
				if it.Kind == yaml.MappingNode {
					unknown(it, issuerFields)
				}
			}
		}
	}
	if err := n.Decode(c); err != nil {
		errs = append(errs, fmt.Errorf("%s: vending: %w", file, err))
	}
	if len(errs) == 0 {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", file, n.Line, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Audience != "" {
		if u, err := url.Parse(c.Audience); err != nil || !u.IsAbs() {
			errs = append(errs, errors.New("vending.audience: not an absolute URI"))
		}
	}
	seen, names := map[string]bool{}, map[string]bool{}
	for i, is := range c.Issuers {
		prefix := fmt.Sprintf("vending.issuers[%d]", i)
		if err := is.Config.Validate(prefix); err != nil {
			errs = append(errs, err)
		}
		if is.Issuer != "" && seen[is.Issuer] {
			errs = append(errs, fmt.Errorf("%s: duplicate issuer", prefix))
		}
		if is.Name != "" && names[is.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate name %q", prefix, is.Name))
		}
		seen[is.Issuer], names[is.Name] = true, true
		if is.RenewPastToken < 0 || time.Duration(is.RenewPastToken) > MaxRenewPastToken {
			errs = append(errs, fmt.Errorf("%s: renew_past_token must be between 0 and %s", prefix, MaxRenewPastToken))
		}
	}
	return errors.Join(errs...)
}

// ExternalIssuers builds the [Issuer]s of the config's external issuers,
// each validated by a [federation.Validator] reading the issuer's
// metadata and JWKS. client nil means http.DefaultClient (every fetch is
// bounded by federation.DefaultFetchTimeout); now nil means time.Now.
func (c *Config) ExternalIssuers(client *http.Client, now func() time.Time) ([]Issuer, error) {
	var out []Issuer
	for _, is := range c.Issuers {
		v, err := federation.New(is.Config, federation.Options{Client: client, Now: now})
		if err != nil {
			return nil, err
		}
		out = append(out, Issuer{
			Issuer:         is.Issuer,
			Name:           is.Name,
			Federation:     v,
			AnyClient:      is.AnyClient,
			IgnoreScope:    is.IgnoreScope,
			RenewPastToken: time.Duration(is.RenewPastToken),
		})
	}
	return out, nil
}
