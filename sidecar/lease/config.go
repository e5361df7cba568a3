package lease

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the `vending:` section of the keyless configuration
// (config.Config.Vending):
//
//	vending:
//	  audience: https://api.example.test   # the proxy; aud of leases
//	  issuers:                             # external OIDC issuers, besides the embedded one
//	    - issuer: https://idp.example.com
//	      audience: keyless                # must be in their tokens' aud
//	      ignore_scope: true               # their scopes do not bound leases
//	      any_client: false                # their client_id must be the leasing app
//	      groups_claim: groups             # a claim listing the subject's groups
//
// The policy itself is the config's `policy:` section ([policy.FromNode]).
type Config struct {
	// Audience is the aud of leases that name no resource: the proxy's
	// public URL. Empty: the caller supplies it (keyless dev uses the
	// proxy's listen URL).
	Audience string `yaml:"audience"`
	// Issuers are the external subject-token issuers trusted.
	Issuers []IssuerConfig `yaml:"issuers"`
}

// IssuerConfig is one external issuer; see [Issuer] for the flags.
type IssuerConfig struct {
	Issuer      string `yaml:"issuer"`
	Audience    string `yaml:"audience"`
	AnyClient   bool   `yaml:"any_client"`
	IgnoreScope bool   `yaml:"ignore_scope"`
	GroupsClaim string `yaml:"groups_claim"`
}

var (
	configFields = []string{"audience", "issuers"}
	issuerFields = []string{"issuer", "audience", "any_client", "ignore_scope", "groups_claim"}
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
	seen := map[string]bool{}
	for i, is := range c.Issuers {
		u, err := url.Parse(is.Issuer)
		switch {
		case is.Issuer == "":
			errs = append(errs, fmt.Errorf("vending.issuers[%d]: issuer is required", i))
		case err != nil || !u.IsAbs() || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))):
			errs = append(errs, fmt.Errorf("vending.issuers[%d]: issuer must be an https URL (http only on loopback)", i))
		case seen[is.Issuer]:
			errs = append(errs, fmt.Errorf("vending.issuers[%d]: duplicate issuer", i))
		}
		seen[is.Issuer] = true
		if is.Audience == "" {
			errs = append(errs, fmt.Errorf("vending.issuers[%d]: audience is required (the aud their tokens carry for keyless)", i))
		}
	}
	return errors.Join(errs...)
}

// ExternalIssuers builds the [Issuer]s of the config's external issuers,
// each verified through its discovery document and JWKS. client nil means
// a client with a 10 s timeout; now nil means time.Now.
func (c *Config) ExternalIssuers(client *http.Client, now func() time.Time) []Issuer {
	var out []Issuer
	for _, is := range c.Issuers {
		out = append(out, Issuer{
			Issuer:      is.Issuer,
			Verifier:    &External{Issuer: is.Issuer, Audience: is.Audience, Client: client, Now: now},
			AnyClient:   is.AnyClient,
			IgnoreScope: is.IgnoreScope,
			GroupsClaim: is.GroupsClaim,
		})
	}
	return out
}
