package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
)

// Login configures how people sign in on the /device page besides the
// sandbox users: upstream OpenID Providers, as Dex's connectors or
// Keycloak's identity brokering do (docs/identity-providers.md).
type Login struct {
	// OIDC lists the upstream OpenID Providers; empty means sandbox users
	// only.
	OIDC []OIDCLogin `yaml:"oidc"`
}

// OIDCLogin is one upstream OpenID Provider. keyless is its relying party
// with the authorization code flow, PKCE (S256), state and nonce, and a
// confidential client (client_secret_basic).
//
// https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth
type OIDCLogin struct {
	// Name is a short id (letters, digits, '-', '_'; first a letter or
	// digit), shown on the button
	// and prefixed to subjects: a user whose subject claim is "u1" signs
	// in as "Name:u1", so two providers (or a sandbox user) can never
	// share a subject. Required.
	Name string `yaml:"name"`
	// Issuer is the provider's issuer URL, compared exactly with the ID
	// token's iss; its discovery document is
	// Issuer + "/.well-known/openid-configuration". https (http only on
	// loopback). Required.
	Issuer string `yaml:"issuer"`
	// ClientID is keyless's client_id at the provider; required.
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret (a file, so the secret is
	// never in the config); required. Its redirect URI to register at the
	// provider is the issuer URL + "/device/callback".
	ClientSecretFile string `yaml:"client_secret_file"`
	// Scopes requested; "openid" is always added. Empty: openid, profile,
	// email.
	Scopes []string `yaml:"scopes"`
	// SubjectClaim names the ID-token claim that identifies the user;
	// empty means "sub" (OpenID Connect Core section 5.7: only sub is
	// stable and unique per issuer).
	SubjectClaim string `yaml:"subject_claim"`
	// GroupsClaim names an ID-token claim holding the user's groups (a
	// list of strings, or one string). Empty: no groups from the provider.
	GroupsClaim string `yaml:"groups_claim"`
	// GroupMap maps the provider's group names or ids to policy groups,
	// as vending.issuers' group_map does: non-empty, only mapped groups
	// count and the rest are dropped; empty, the provider's groups are
	// the policy groups as they are.
	GroupMap map[string]string `yaml:"group_map"`
}

// DefaultLoginScopes are requested when OIDCLogin.Scopes is empty.
var DefaultLoginScopes = []string{"openid", "profile", "email"}

// RequestScopes returns the scopes to request: Scopes (or the defaults)
// with openid first.
func (o *OIDCLogin) RequestScopes() []string {
	sc := o.Scopes
	if len(sc) == 0 {
		sc = DefaultLoginScopes
	}
	out := []string{"openid"}
	for _, s := range sc {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Subject returns the claim naming the user: SubjectClaim or "sub".
func (o *OIDCLogin) Subject() string {
	if o.SubjectClaim == "" {
		return "sub"
	}
	return o.SubjectClaim
}

func (l *Login) validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, o := range l.OIDC {
		where := fmt.Sprintf("login.oidc[%d]", i)
		if o.Name != "" {
			where = fmt.Sprintf("login.oidc[%d] (%s)", i, o.Name)
		}
		add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(where+": "+format, a...)) }
		switch {
		case o.Name == "":
			add("name is required")
		case !validLoginName(o.Name):
			add("name must be 1-32 letters, digits, '-' or '_', starting with a letter or digit")
		case seen[o.Name]:
			add("duplicate name")
		}
		seen[o.Name] = true
		if o.Issuer == "" {
			add("issuer is required")
		} else if u, err := url.Parse(o.Issuer); err != nil || !u.IsAbs() || u.RawQuery != "" || u.Fragment != "" ||
			(u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
			add("issuer must be an https URL without query or fragment (http only on loopback)")
		}
		if o.ClientID == "" {
			add("client_id is required")
		}
		if o.ClientSecretFile == "" {
			add("client_secret_file is required")
		}
		for _, s := range o.Scopes {
			if !validScope(s) {
				add("scopes: %q is not a valid scope token", s)
			}
		}
		for k, v := range o.GroupMap {
			if k == "" || !validToken(v) {
				add("group_map: %q -> %q: policy group names are printable ASCII without spaces, quotes or colons", k, v)
			}
		}
	}
	return errors.Join(errs...)
}

// validLoginName: it is also the federation issuer name of the
// provider's ID-token validator, which must start with a letter or digit.
func validLoginName(s string) bool {
	if s == "" || len(s) > 32 || s[0] == '-' || s[0] == '_' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
