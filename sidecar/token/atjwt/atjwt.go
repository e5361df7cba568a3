// Package atjwt parses and checks the RFC 9068 access tokens keyless
// issues ("typ": "at+jwt", ES256, DPoP-bound through cnf.jkt) without a
// JOSE library and without I/O, so that the same rules run in the sidecar
// (through [token.JWTVerifier], which adds the key source and the
// signature check) and in the edge Worker (which verifies the signature
// through WebCrypto).
//
// # Use
//
//	p, err := atjwt.Parse(raw, 0)                 // shape, typ, alg, kid
//	key := keys[p.KID]                             // the caller's key source
//	sig, err := p.DecodeSignature()
//	verify(p.SigningInput, sig, key)               // the caller's ES256 check
//	c, err := p.Claims(atjwt.Options{Issuer: iss, Audience: aud})
//
// Every rejection wraps [ErrInvalid].
package atjwt

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Alg is the one algorithm keyless signs access tokens with.
const Alg = "ES256"

// Defaults for [Options] and [Parse].
const (
	// DefaultLeeway is the exp/nbf leeway (docs/security.md#d9).
	DefaultLeeway = 30 * time.Second
	// MaxLeeway caps Leeway (docs/security.md#windows).
	MaxLeeway = 60 * time.Second
	// DefaultMaxSize bounds a token before anything is decoded.
	DefaultMaxSize = 8 << 10
)

// ErrInvalid wraps every rejection: the token is malformed, or its claims
// are wrong, expired, or not meant for this audience. Callers answer 401
// invalid_token.
var ErrInvalid = errors.New("token: invalid")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
}

// maxGroups bounds the groups claim.
const maxGroups = 64

// maxNumericDate is 9999-12-31T23:59:59Z: a larger exp (1e300) is not a
// date, and would overflow time arithmetic.
const maxNumericDate = 253402300799

var b64 = base64.RawURLEncoding.Strict()

// Claims are the verified claims of an access token that the rest of keyless
// uses. Scope is the space-separated scope claim split into its tokens.
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
	ClientID string
	JTI      string
	// LeaseID is set only on leases minted by the vending service
	// (claim "lease_id"); the proxy accepts nothing else
	// (docs/security.md#d14).
	LeaseID string
	Scope   []string
	// JKT is cnf.jkt: the RFC 7638 thumbprint of the DPoP key the token is
	// bound to. Empty for an unbound token, which the proxy refuses.
	JKT string
	// IdP is the configured name of the external issuer whose token the
	// lease was minted from (claim "idp"); empty for a lease from
	// keyless's own issuer. Subjects are namespaced by it.
	IdP string
	// Preview marks a preview-mode lease (claim "preview": true).
	Preview bool
	// Groups is the groups claim keyless writes on the device flow's
	// tokens of a user an upstream identity provider signed in
	// (login.oidc, docs/identity-providers.md): policy groups, already
	// mapped through the provider's group_map. Empty otherwise.
	Groups    []string
	IssuedAt  time.Time
	NotBefore time.Time
	Expiry    time.Time
}

// HasScope reports whether s is one of the token's scopes, by exact,
// case-sensitive match (RFC 6749 section 3.3).
func (c *Claims) HasScope(s string) bool {
	for _, v := range c.Scope {
		if v == s {
			return true
		}
	}
	return false
}

// Parsed is a token split and its header checked; its signature is not
// verified yet.
type Parsed struct {
	// KID names the issuer key that must verify the signature.
	KID string
	// SigningInput is the JWS signing input (header.payload).
	SigningInput string
	payload      string
	sig64        string
}

// Parse splits a compact JWS and checks its header: typ at+jwt, alg
// ES256, a kid, and no other member. maxSize bounds raw before anything is
// decoded; zero means DefaultMaxSize.
//
// https://www.rfc-editor.org/rfc/rfc9068#section-4
func Parse(raw string, maxSize int) (*Parsed, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if len(raw) > maxSize {
		return nil, invalid("token too large")
	}
	// One compact JWS: exactly three segments. Counting first keeps a
	// "."-bomb from costing more than one pass.
	if strings.Count(raw, ".") != 2 {
		return nil, invalid("not a compact JWS")
	}
	h64, rest, _ := strings.Cut(raw, ".")
	p64, s64, _ := strings.Cut(rest, ".")
	hb, err := b64.DecodeString(h64)
	if err != nil {
		return nil, invalid("header is not base64url")
	}
	hdr, err := DecodeObject(hb)
	if err != nil {
		return nil, invalid("header: %v", err)
	}
	// RFC 9068 section 4: typ must be at+jwt or application/at+jwt.
	typ, _ := hdr["typ"].(string)
	if t := strings.ToLower(typ); t != "at+jwt" && t != "application/at+jwt" {
		return nil, invalid("typ is not at+jwt")
	}
	if alg, _ := hdr["alg"].(string); alg != Alg {
		return nil, invalid("alg is not %s", Alg)
	}
	for name := range hdr {
		switch name {
		case "typ", "alg", "kid":
		default:
			// crit, jku, x5u, jwk, b64...: nothing we understand or will
			// follow (RFC 8725 section 3.10).
			return nil, invalid("unsupported header member")
		}
	}
	kid, _ := hdr["kid"].(string)
	if kid == "" {
		return nil, invalid("no kid")
	}
	return &Parsed{KID: kid, SigningInput: raw[:len(h64)+1+len(p64)], payload: p64, sig64: s64}, nil
}

// DecodeSignature decodes the signature segment; call it after the key
// was found.
func (p *Parsed) DecodeSignature() ([]byte, error) {
	sig, err := b64.DecodeString(p.sig64)
	if err != nil {
		return nil, invalid("signature is not base64url")
	}
	return sig, nil
}

// Options are the claim checks of [Parsed.Claims].
type Options struct {
	// Issuer must equal iss exactly; required.
	Issuer string
	// Audience must be one of aud's values; required.
	Audience string
	// Leeway tolerates clock skew on exp and nbf; zero means
	// DefaultLeeway, more than MaxLeeway means MaxLeeway.
	Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Claims decodes and checks the payload: call it only once the signature
// verified. It checks iss, aud, exp, nbf, iat and the shape of every claim
// it returns; not revocation, nor that the token is DPoP-bound.
func (p *Parsed) Claims(o Options) (*Claims, error) {
	pb, err := b64.DecodeString(p.payload)
	if err != nil {
		return nil, invalid("payload is not base64url")
	}
	cl, err := DecodeObject(pb)
	if err != nil {
		return nil, invalid("payload: %v", err)
	}
	return checkClaims(cl, o)
}

func checkClaims(m map[string]any, o Options) (*Claims, error) {
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	leeway := o.Leeway
	if leeway <= 0 {
		leeway = DefaultLeeway
	}
	leeway = min(leeway, MaxLeeway)

	var c Claims
	var err error
	str := func(name string, required bool) string {
		x, ok := m[name]
		if !ok {
			if required && err == nil {
				err = invalid("missing %s", name)
			}
			return ""
		}
		s, ok := x.(string)
		if (!ok || s == "") && err == nil {
			err = invalid("%s is not a non-empty string", name)
		}
		return s
	}
	date := func(name string, required bool) time.Time {
		x, ok := m[name]
		if !ok {
			if required && err == nil {
				err = invalid("missing %s", name)
			}
			return time.Time{}
		}
		t, ok := numericDate(x)
		if !ok && err == nil {
			err = invalid("%s is not a NumericDate", name)
		}
		return t
	}
	c.Issuer = str("iss", true)
	c.Subject = str("sub", true)
	c.ClientID = str("client_id", true)
	c.JTI = str("jti", true)
	c.LeaseID = str("lease_id", false)
	c.IdP = str("idp", false)
	scope := str("scope", false)
	c.Expiry = date("exp", true)
	c.IssuedAt = date("iat", true)
	c.NotBefore = date("nbf", false)
	if err != nil {
		return nil, err
	}
	if c.Issuer != o.Issuer {
		return nil, invalid("wrong issuer")
	}
	switch a := m["aud"].(type) {
	case string:
		c.Audience = []string{a}
	case []any:
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return nil, invalid("aud holds a non-string")
			}
			c.Audience = append(c.Audience, s)
		}
	case nil:
		return nil, invalid("missing aud")
	default:
		return nil, invalid("aud is not a string or array")
	}
	found := false
	for _, a := range c.Audience {
		found = found || a == o.Audience
	}
	if !found { // also rejects aud: [] (CVE-2020-26160)
		return nil, invalid("wrong audience")
	}
	if !now.Before(c.Expiry.Add(leeway)) {
		return nil, invalid("expired")
	}
	if !c.NotBefore.IsZero() && c.NotBefore.After(now.Add(leeway)) {
		return nil, invalid("not yet valid")
	}
	if c.IssuedAt.After(now.Add(leeway)) {
		return nil, invalid("issued in the future")
	}
	if scope != "" {
		c.Scope = strings.Split(scope, " ")
	}
	if x, ok := m["cnf"]; ok {
		cm, ok := x.(map[string]any)
		if !ok {
			return nil, invalid("cnf is not an object")
		}
		jkt, ok := cm["jkt"].(string)
		if !ok || jkt == "" || len(cm) != 1 {
			return nil, invalid("cnf must hold exactly one jkt")
		}
		c.JKT = jkt
	}
	if x, ok := m["groups"]; ok {
		gs, ok := x.([]any)
		if !ok || len(gs) > maxGroups {
			return nil, invalid("groups is not an array of at most %d strings", maxGroups)
		}
		for _, g := range gs {
			s, ok := g.(string)
			if !ok || s == "" {
				return nil, invalid("groups holds a non-string or an empty string")
			}
			c.Groups = append(c.Groups, s)
		}
	}
	if x, ok := m["preview"]; ok {
		b, ok := x.(bool)
		if !ok {
			return nil, invalid("preview is not a boolean")
		}
		c.Preview = b
	}
	return &c, nil
}

// numericDate accepts a JSON number of seconds since the epoch, fractions
// allowed (docs/security.md#d12); strings, negatives and absurd values
// are not dates.
func numericDate(x any) (time.Time, bool) {
	n, ok := x.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}
