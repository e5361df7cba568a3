package lease

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func decodeSection(t *testing.T, src string) (*Config, error) {
	t.Helper()
	var doc struct {
		Vending yaml.Node `yaml:"vending"`
	}
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return DecodeConfig("keyless.yaml", &doc.Vending)
}

func TestDecodeConfig(t *testing.T) {
	c, err := decodeSection(t, `
issuer: {url: https://auth.example.test}
vending:
  audience: https://api.example.test
  issuers:
    - issuer: https://idp.example.com
      audience: keyless
      ignore_scope: true
      groups_claim: groups
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Audience != apiAud || len(c.Issuers) != 1 || !c.Issuers[0].IgnoreScope {
		t.Fatalf("config = %+v", c)
	}
	is := c.ExternalIssuers(nil, nil)
	if len(is) != 1 || is[0].Issuer != "https://idp.example.com" || !is[0].IgnoreScope || is[0].GroupsClaim != "groups" {
		t.Fatalf("issuers = %+v", is)
	}
	if c, err := decodeSection(t, "other: 1\n"); err != nil || c.Audience != "" {
		t.Fatalf("absent section: %+v, %v", c, err)
	}
}

func TestDecodeConfigErrors(t *testing.T) {
	tests := map[string]struct{ src, want string }{
		"unknown field":        {"vending:\n  audiense: x\n", "keyless.yaml:2: vending: unknown field \"audiense\""},
		"unknown issuer field": {"vending:\n  issuers:\n    - issuer: https://a.test\n      audience: k\n      jwks: x\n", "keyless.yaml:5: vending: unknown field \"jwks\""},
		"http issuer":          {"vending:\n  issuers: [{issuer: http://idp.example.com, audience: k}]\n", "must be an https URL"},
		"no audience":          {"vending:\n  issuers: [{issuer: https://idp.example.com}]\n", "audience is required"},
		"duplicate":            {"vending:\n  issuers: [{issuer: https://a.test, audience: k}, {issuer: https://a.test, audience: k}]\n", "duplicate issuer"},
		"relative audience":    {"vending:\n  audience: /api\n", "not an absolute URI"},
		"not a mapping":        {"vending: [1]\n", "keyless.yaml:1: vending must be a mapping"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := decodeSection(t, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
