package federation

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// TokenType is a kind of token an issuer may present.
type TokenType string

// Token types; the names are those of RFC 8693 section 3's token type
// URIs (urn:ietf:params:oauth:token-type:NAME).
const (
	IDToken     TokenType = "id_token"
	AccessToken TokenType = "access_token"
	JWT         TokenType = "jwt"
)

// Defaults for [Config].
const (
	DefaultLeeway = 30 * time.Second
	// MaxLeeway caps Leeway (docs/security.md: AT_LEEWAY at most 60 s).
	MaxLeeway = 60 * time.Second
	// DefaultMaxSize bounds a token before anything is decoded; Entra ID
	// tokens with many groups run to several kilobytes.
	DefaultMaxSize = 16 << 10
	// MinRSABits is the smallest RSA modulus accepted (RFC 7518 section
	// 3.3 requires 2048).
	MinRSABits = 2048
)

// DefaultAlgs are the signature algorithms accepted when Config.Algs is
// empty.
var DefaultAlgs = []string{"RS256", "PS256", "ES256", "EdDSA"}

// SupportedAlgs are all the algorithms Config.Algs may name: asymmetric
// JWS algorithms only. "none" and HMAC (HS256...) are never accepted: an
// HMAC "keyed" with a public key is the classic forgery (RFC 8725 section
// 2.1).
var SupportedAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// DefaultTokenTypes are accepted when Config.TokenTypes is empty.
var DefaultTokenTypes = []TokenType{IDToken, AccessToken, JWT}

// Config is one external issuer (an entry of vending.issuers, or of the
// device page's upstream sign-in). Zero values are the documented
// defaults; [Config.Validate] reports every problem at once.
type Config struct {
	// Name is a short label for the issuer ("corp"), required: policy
	// rules name it (issuer: corp), leases and audit lines record it, the
	// upstream receives it in X-Keyless-Issuer. Letters, digits, '.', '_'
	// and '-'.
	Name string `yaml:"name"`
	// Issuer is the iss value, compared exactly; https (http only on
	// loopback); required.
	Issuer string `yaml:"issuer"`
	// Audience: a token passes when its aud contains any of these;
	// required.
	Audience StringList `yaml:"audience"`
	// Algs allowed in the token's header; empty means DefaultAlgs.
	Algs []string `yaml:"algs"`
	// TokenTypes the issuer may present; empty means DefaultTokenTypes.
	TokenTypes []TokenType `yaml:"token_types"`
	// ClientClaim names the claim holding the client the token was
	// issued to ("appid" for Entra ID v1 tokens). Empty: client_id, else
	// azp, else aud when it has exactly one value.
	ClientClaim string `yaml:"client_claim"`
	// SubjectClaim names the claim that identifies the user; empty means
	// "sub". Common: email, preferred_username, oid.
	SubjectClaim string `yaml:"subject_claim"`
	// GroupsClaim names a claim listing the user's groups (a list of
	// strings, or one string); empty: no groups.
	GroupsClaim string `yaml:"groups_claim"`
	// GroupMap maps IdP group ids or names to policy groups. Empty: the
	// IdP's groups are the policy groups as they are. Non-empty: only
	// mapped groups count, unmapped ones are dropped.
	GroupMap map[string]StringList `yaml:"group_map"`
	// RequiredClaims must be present with these values (a list claim
	// passes when it contains the value): email_verified: true, tid: ...
	RequiredClaims map[string]any `yaml:"required_claims"`
	// Leeway tolerates clock skew on exp, nbf and iat; zero means
	// DefaultLeeway, at most MaxLeeway.
	Leeway Duration `yaml:"leeway"`
	// JWKSURI, when set, is used instead of the discovered jwks_uri (an
	// issuer without discovery).
	JWKSURI string `yaml:"jwks_uri"`
}

// Fields are the YAML field names of Config, for callers that refuse
// unknown fields.
var Fields = []string{"name", "issuer", "audience", "algs", "token_types", "client_claim",
	"subject_claim", "groups_claim", "group_map", "required_claims", "leeway", "jwks_uri"}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Validate reports every problem at once; prefix names the entry
// ("vending.issuers[0]").
func (c *Config) Validate(prefix string) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(prefix+": "+format, a...)) }
	if !nameRE.MatchString(c.Name) {
		bad("name is required: letters, digits, '.', '_' or '-', at most 63")
	}
	if c.Issuer == "" {
		bad("issuer is required")
	} else if !httpsOrLoopback(c.Issuer) {
		bad("issuer must be an https URL (http only on loopback)")
	}
	if c.JWKSURI != "" && !httpsOrLoopback(c.JWKSURI) {
		bad("jwks_uri must be an https URL (http only on loopback)")
	}
	if len(c.Audience) == 0 || slices.Contains(c.Audience, "") {
		bad("audience is required (the aud their tokens carry for keyless)")
	}
	for _, a := range c.Algs {
		if !slices.Contains(SupportedAlgs, a) {
			bad("algs: %q is not allowed (asymmetric algorithms only: %s)", a, strings.Join(SupportedAlgs, ", "))
		}
	}
	for _, t := range c.TokenTypes {
		if !slices.Contains(DefaultTokenTypes, t) {
			bad("token_types: %q is not one of id_token, access_token, jwt", t)
		}
	}
	if c.Leeway < 0 || time.Duration(c.Leeway) > MaxLeeway {
		bad("leeway must be between 0 and %s", MaxLeeway)
	}
	for k := range c.RequiredClaims {
		switch c.RequiredClaims[k].(type) {
		case string, bool, int, int64, float64:
		default:
			bad("required_claims.%s: value must be a string, number or boolean", k)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) algs() []string {
	if len(c.Algs) == 0 {
		return DefaultAlgs
	}
	return c.Algs
}

func (c *Config) tokenTypes() []TokenType {
	if len(c.TokenTypes) == 0 {
		return DefaultTokenTypes
	}
	return c.TokenTypes
}

func (c *Config) leeway() time.Duration {
	l := time.Duration(c.Leeway)
	switch {
	case l <= 0:
		return DefaultLeeway
	case l > MaxLeeway:
		return MaxLeeway
	}
	return l
}

func (c *Config) subjectClaim() string {
	if c.SubjectClaim == "" {
		return "sub"
	}
	return c.SubjectClaim
}

func httpsOrLoopback(s string) bool {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || u.RawQuery != "" {
		return false
	}
	return u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))
}

func isLoopback(h string) bool {
	return h == "localhost" || h == "::1" || strings.HasPrefix(h, "127.")
}

// StringList is a YAML scalar or a list of scalars.
type StringList []string

// UnmarshalYAML accepts "a" as well as [a, b].
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = StringList{n.Value}
		return nil
	case yaml.SequenceNode:
		var s []string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*l = s
		return nil
	}
	return fmt.Errorf("line %d: want a string or a list of strings", n.Line)
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 30s", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}
