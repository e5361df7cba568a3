package lease

import (
	"strings"
	"testing"
	"time"

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
    - name: corp
      issuer: https://idp.example.com
      audience: [keyless, where2eat]
      ignore_scope: true
      groups_claim: groups
      group_map: {eng: [engineering, staff], ops: ops}
      required_claims: {email_verified: true}
      algs: [RS256]
      leeway: 10s
      renew_past_token: 1h
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Audience != apiAud || len(c.Issuers) != 1 || !c.Issuers[0].IgnoreScope {
		t.Fatalf("config = %+v", c)
	}
	is, err := c.ExternalIssuers(nil, nil)
	if err != nil || len(is) != 1 || is[0].Issuer != "https://idp.example.com" || !is[0].IgnoreScope || is[0].Name != "corp" || is[0].RenewPastToken != time.Hour {
		t.Fatalf("issuers = %+v, %v", is, err)
	}
	fc := is[0].Federation.Config()
	if fc.GroupsClaim != "groups" || len(fc.GroupMap["eng"]) != 2 || fc.GroupMap["ops"][0] != "ops" || len(fc.Audience) != 2 ||
		fc.RequiredClaims["email_verified"] != true || time.Duration(fc.Leeway) != 10*time.Second {
		t.Fatalf("federation config = %+v", fc)
	}
	if c, err := decodeSection(t, "other: 1\n"); err != nil || c.Audience != "" {
		t.Fatalf("absent section: %+v, %v", c, err)
	}
}

func TestDecodeConfigErrors(t *testing.T) {
	tests := map[string]struct{ src, want string }{
		"unknown field":        {"vending:\n  audiense: x\n", "keyless.yaml:2: vending: unknown field \"audiense\""},
		"unknown issuer field": {"vending:\n  issuers:\n    - issuer: https://a.test\n      audience: k\n      jwks: x\n", "keyless.yaml:5: vending: unknown field \"jwks\""},
		"http issuer":          {"vending:\n  issuers: [{name: a, issuer: http://idp.example.com, audience: k}]\n", "must be an https URL"},
		"no audience":          {"vending:\n  issuers: [{name: a, issuer: https://idp.example.com}]\n", "audience is required"},
		"no name":              {"vending:\n  issuers: [{issuer: https://idp.example.com, audience: k}]\n", "name is required"},
		"duplicate":            {"vending:\n  issuers: [{name: a, issuer: https://a.test, audience: k}, {name: b, issuer: https://a.test, audience: k}]\n", "duplicate issuer"},
		"duplicate name":       {"vending:\n  issuers: [{name: a, issuer: https://a.test, audience: k}, {name: a, issuer: https://b.test, audience: k}]\n", "duplicate name"},
		"HMAC alg":             {"vending:\n  issuers: [{name: a, issuer: https://a.test, audience: k, algs: [HS256]}]\n", "not allowed"},
		"renew_past_token":     {"vending:\n  issuers: [{name: a, issuer: https://a.test, audience: k, renew_past_token: 48h}]\n", "renew_past_token"},
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
