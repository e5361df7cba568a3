package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Defaults for [JWTVerifier].
const (
	// DefaultLeeway is the exp/nbf leeway (SECURITY.md decision 9).
	DefaultLeeway = 30 * time.Second
	// MaxLeeway caps Leeway (SECURITY.md "AT_LEEWAY ≤ 60 s").
	MaxLeeway = 60 * time.Second
	// DefaultMaxSize bounds a token before anything is decoded.
	DefaultMaxSize = 8 << 10
)

// ErrInvalidToken wraps every rejection by [JWTVerifier.Verify]: the token
// is malformed, badly signed, expired, or not meant for this audience.
// Callers answer 401 invalid_token. An error that does not wrap it means the
// key source could not answer (answer 503); the token is not accepted either
// way.
var ErrInvalidToken = errors.New("token: invalid")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, a...)...)
}

// JWTVerifier verifies RFC 9068 access tokens signed ES256 by a key from
// Keys: typ at+jwt, kid known, signature, iss, aud, exp, nbf, iat, and the
// shape of every claim it returns. It does not check revocation, nor that
// the token is DPoP-bound (Claims.JKT is empty for an unbound token): both
// are the caller's policy.
type JWTVerifier struct {
	// Keys resolves kids; required. Use a [*KeySet] inside the issuer and
	// a [*RemoteJWKS] elsewhere.
	Keys KeySource
	// Issuer must equal iss exactly; required.
	Issuer string
	// Audience must be one of aud's values; required.
	Audience string
	// Leeway tolerates clock skew on exp and nbf; zero means
	// DefaultLeeway, more than MaxLeeway means MaxLeeway.
	Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxSize bounds the raw token; zero means DefaultMaxSize.
	MaxSize int
}

var _ Verifier = (*JWTVerifier)(nil)

// maxNumericDate is 9999-12-31T23:59:59Z: a larger exp (1e300) is not a
// date, and would overflow time arithmetic.
const maxNumericDate = 253402300799

// Verify implements [Verifier].
//
// https://www.rfc-editor.org/rfc/rfc9068#section-4
func (v *JWTVerifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if v.Keys == nil || v.Issuer == "" || v.Audience == "" {
		return nil, errors.New("token: verifier needs Keys, Issuer and Audience")
	}
	maxSize := v.MaxSize
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
	hb, err := b64.Strict().DecodeString(h64)
	if err != nil {
		return nil, invalid("header is not base64url")
	}
	hdr, err := decodeObject(hb)
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
	pub, err := v.Keys.VerificationKey(ctx, kid)
	if errors.Is(err, ErrUnknownKey) {
		return nil, invalid("unknown kid")
	}
	if err != nil {
		return nil, fmt.Errorf("token: key source: %w", err)
	}
	sig, err := b64.Strict().DecodeString(s64)
	if err != nil {
		return nil, invalid("signature is not base64url")
	}
	ver, err := jws.NewVerifier(jwa.ES256)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	if err := ver.Verify([]byte(raw[:len(h64)+1+len(p64)]), sig, pub); err != nil {
		return nil, invalid("signature does not verify")
	}
	pb, err := b64.Strict().DecodeString(p64)
	if err != nil {
		return nil, invalid("payload is not base64url")
	}
	cl, err := decodeObject(pb)
	if err != nil {
		return nil, invalid("payload: %v", err)
	}
	return v.claims(cl)
}

func (v *JWTVerifier) claims(m map[string]any) (*Claims, error) {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	leeway := v.Leeway
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
	scope := str("scope", false)
	c.Expiry = date("exp", true)
	c.IssuedAt = date("iat", true)
	c.NotBefore = date("nbf", false)
	if err != nil {
		return nil, err
	}
	if c.Issuer != v.Issuer {
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
		found = found || a == v.Audience
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
// allowed (SECURITY.md decision 12); strings, negatives and absurd values
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
