package federation

import (
	"context"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/keyless-dev/keyless/sidecar/internal/strictjson"
)

// Options configure [New]. Zero values are the defaults.
type Options struct {
	// Keys resolves the issuer's keys; nil means a [*Remote] built from
	// the config (discovery, or its jwks_uri), using Client and Now.
	Keys KeySource
	// Client fetches metadata and JWKS; nil means http.DefaultClient
	// (every fetch is bounded by DefaultFetchTimeout).
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MinRefresh is the Remote's JWKS refresh rate limit; zero means
	// DefaultMinRefresh.
	MinRefresh time.Duration
	// MaxSize bounds a raw token; zero means DefaultMaxSize.
	MaxSize int
}

// Validator validates one issuer's tokens. It is safe for concurrent use.
type Validator struct {
	cfg     Config
	keys    KeySource
	remote  *Remote
	now     func() time.Time
	maxSize int
}

// New checks cfg and returns its validator. It does no I/O: keys are
// fetched on first use (or by [Validator.Check]).
func New(cfg Config, o Options) (*Validator, error) {
	if err := cfg.Validate(cfg.Name); err != nil {
		return nil, err
	}
	v := &Validator{cfg: cfg, keys: o.Keys, now: o.Now, maxSize: o.MaxSize}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxSize <= 0 {
		v.maxSize = DefaultMaxSize
	}
	if v.keys == nil {
		v.remote = &Remote{Issuer: cfg.Issuer, Name: cfg.Name, JWKSURI: cfg.JWKSURI,
			Client: o.Client, Now: o.Now, MinRefresh: o.MinRefresh}
		v.keys = v.remote
	}
	return v, nil
}

// Config returns the issuer's configuration.
func (v *Validator) Config() Config { return v.cfg }

// Remote returns the key source New built, or nil when Options.Keys was
// given.
func (v *Validator) Remote() *Remote { return v.remote }

// Expect is what the caller knows about the token it validates.
type Expect struct {
	// Type is the token type the presenter declared (RFC 8693
	// subject_token_type); it must be one of the issuer's token_types.
	// Empty means JWT: a signed JWT of either kind, checked by the rules
	// common to both.
	Type TokenType
	// ClientID, when set, is the client the token must have been issued
	// to (the issuer's client_claim; and azp when present in an ID
	// token). Empty: any client; Identity.ClientID tells which.
	ClientID string
	// Nonce, when set, must equal the ID token's nonce claim (OpenID
	// Connect Core section 3.1.3.7 step 11; the authorization-code flow
	// sets it).
	Nonce string
}

// Identity is a validated token's identity.
type Identity struct {
	// Issuer is the issuer's configured name; IssuerURL its iss.
	Issuer    string
	IssuerURL string
	// Subject is the value of the issuer's subject_claim (sub by
	// default); Sub is the sub claim itself.
	Subject string
	Sub     string
	// ClientID is the client the token was issued to, per client_claim
	// ("" when the token does not say).
	ClientID string
	Audience []string
	// Groups are policy groups: the groups claim through group_map.
	Groups []string
	// JTI is the jti claim ("" when absent).
	JTI string
	// JKT is cnf.jkt (RFC 9449 section 6.1): the token is DPoP-bound to
	// that key. Empty: a bearer token.
	JKT string
	// Scope is the scope claim (or scp) split into tokens.
	Scope []string
	// Type is the token type validated: Expect.Type, or JWT.
	Type      TokenType
	IssuedAt  time.Time
	NotBefore time.Time
	Expiry    time.Time
	// Claims are all the payload's claims, as strictjson decodes them.
	Claims map[string]any
}

var b64 = base64.RawURLEncoding.Strict()

// maxNumericDate is 9999-12-31T23:59:59Z.
const maxNumericDate = 253402300799

// PeekIssuer reads iss from a JWT's payload without verifying anything,
// only to choose the issuer's validator (which checks iss again).
func PeekIssuer(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || len(raw) > 64<<10 {
		return ""
	}
	b, err := b64.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var p struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &p) != nil {
		return ""
	}
	return p.Iss
}

// Validate verifies raw and maps its claims. Every refusal is an
// [*Error]; see the package doc for the sentinels.
//
// ID tokens: https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation
// Access tokens: https://www.rfc-editor.org/rfc/rfc9068#section-4
func (v *Validator) Validate(ctx context.Context, raw string, exp Expect) (*Identity, error) {
	name := v.cfg.Name
	fail := func(c Check, format string, a ...any) (*Identity, error) {
		return nil, refuse(c, name, format, a...)
	}
	tt := exp.Type
	if tt == "" {
		tt = JWT
	}
	if !slices.Contains(v.cfg.tokenTypes(), tt) {
		return fail(CheckTokenType, "issuer %s does not allow %s subject tokens", name, tt)
	}
	if len(raw) > v.maxSize {
		return fail(CheckFormat, "the token is larger than %d bytes", v.maxSize)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return fail(CheckFormat, "the token is not a signed JWT (JWS compact serialization)")
	}
	hb, err1 := b64.DecodeString(parts[0])
	pb, err2 := b64.DecodeString(parts[1])
	sig, err3 := b64.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return fail(CheckFormat, "the token is not base64url")
	}
	hdr, err := strictjson.Parse(hb)
	if err != nil {
		return fail(CheckFormat, "the token's header is not a JSON object (%v)", err)
	}
	claims, err := strictjson.Parse(pb)
	if err != nil {
		return fail(CheckFormat, "the token's payload is not a JSON object (%v)", err)
	}

	// Header: typ, alg, crit.
	typ, _ := hdr["typ"].(string)
	if _, ok := hdr["typ"]; ok && typ == "" {
		return fail(CheckTyp, "the token's typ header is not a string")
	}
	if !typAllowed(typ, tt) {
		return fail(CheckTyp, "a token of typ %s cannot be used as %s", safeTyp(typ), tt)
	}
	alg, _ := hdr["alg"].(string)
	if !slices.Contains(v.cfg.algs(), alg) || !slices.Contains(SupportedAlgs, alg) {
		return fail(CheckAlg, "signed with %s, which issuer %s does not allow (allowed: %s)",
			safeAlg(alg), name, strings.Join(v.cfg.algs(), ", "))
	}
	// RFC 7515 section 4.1.11: no extension is understood, so any crit
	// makes the token unusable.
	if _, ok := hdr["crit"]; ok {
		return fail(CheckCrit, "the token's header has crit, which keyless does not support")
	}
	kid, _ := hdr["kid"].(string)
	if _, ok := hdr["kid"]; ok && kid == "" {
		return fail(CheckKey, "the token's kid header is empty or not a string")
	}

	// Signature, before any claim is believed.
	keys, err := v.keys.Keys(ctx, kid)
	if err != nil {
		var fe *Error
		if errors.As(err, &fe) {
			return nil, fe
		}
		return nil, unavailable(name, DefaultMinRefresh, err)
	}
	var usable []Key
	for _, k := range keys {
		if k.usableFor(alg) && rsaBigEnough(k.Public) {
			usable = append(usable, k)
		}
	}
	switch {
	case len(keys) == 0 && kid != "":
		return fail(CheckKey, "signed by a key issuer %s does not publish (unknown kid, even after a JWKS refresh)", name)
	case len(usable) == 0:
		return fail(CheckKey, "no key of issuer %s can verify %s (key type, curve, size or alg)", name, alg)
	case len(usable) > 8:
		return fail(CheckKey, "the token has no kid and issuer %s publishes too many keys to try", name)
	}
	ver, err := jws.NewVerifier(jwa.SignatureAlgorithm(alg))
	if err != nil {
		return fail(CheckAlg, "signed with %s, which keyless cannot verify", safeAlg(alg))
	}
	input := []byte(parts[0] + "." + parts[1])
	verified := false
	for _, k := range usable {
		if ver.Verify(input, sig, k.Public) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return fail(CheckSignature, "the token's signature does not verify with the keys of issuer %s", name)
	}
	return v.claims(claims, tt, exp)
}

// claims checks the verified payload and maps it to an Identity.
func (v *Validator) claims(c map[string]any, tt TokenType, exp Expect) (*Identity, error) {
	name := v.cfg.Name
	fail := func(ch Check, format string, a ...any) (*Identity, error) {
		return nil, refuse(ch, name, format, a...)
	}
	id := &Identity{Issuer: name, Type: tt, Claims: c}
	if iss, _ := c["iss"].(string); iss != v.cfg.Issuer {
		return fail(CheckIssuer, "the token's iss is not issuer %s's", name)
	}
	id.IssuerURL = v.cfg.Issuer

	aud, ok := stringOrList(c["aud"])
	if !ok || len(aud) == 0 {
		return fail(CheckAudience, "the token has no valid aud claim")
	}
	id.Audience = aud
	if !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(v.cfg.Audience, a) }) {
		return fail(CheckAudience, "audience does not include %s", strings.Join(v.cfg.Audience, " or "))
	}
	azp, hasAzp := c["azp"].(string)
	if _, present := c["azp"]; present && !hasAzp {
		return fail(CheckAzp, "the token's azp is not a string")
	}
	// OpenID Connect Core 3.1.3.7 steps 4 and 5.
	if tt == IDToken && len(aud) > 1 && !hasAzp {
		return fail(CheckAzp, "the ID token has several audiences and no azp")
	}

	now := v.now()
	leeway := v.cfg.leeway()
	expiry, ok, err := numericDate(c, "exp")
	switch {
	case err != nil || !ok:
		return fail(CheckExpiry, "the token has no valid exp claim")
	case !now.Before(expiry.Add(leeway)):
		return fail(CheckExpiry, "the token has expired; get a fresh one from issuer %s", name)
	}
	id.Expiry = expiry
	nbf, ok, err := numericDate(c, "nbf")
	switch {
	case err != nil:
		return fail(CheckNotBefore, "the token's nbf is not a NumericDate")
	case ok && now.Add(leeway).Before(nbf):
		return fail(CheckNotBefore, "the token is not valid yet (nbf in the future; check the clocks)")
	}
	id.NotBefore = nbf
	iat, ok, err := numericDate(c, "iat")
	switch {
	case err != nil:
		return fail(CheckIssuedAt, "the token's iat is not a NumericDate")
	case !ok && tt == IDToken:
		return fail(CheckIssuedAt, "the ID token has no iat claim")
	case ok && now.Add(leeway).Before(iat):
		return fail(CheckIssuedAt, "the token was issued in the future (check the clocks)")
	}
	id.IssuedAt = iat

	sub, _ := c["sub"].(string)
	id.Sub = sub
	subject, _ := c[v.cfg.subjectClaim()].(string)
	if sub == "" || subject == "" || len(subject) > 512 {
		return fail(CheckSubject, "the token has no %s claim naming the user", v.cfg.subjectClaim())
	}
	// The subject travels in an HTTP header (X-Keyless-Sub) and in
	// revocation keys; control characters have no place in either.
	if hasControl(subject) {
		return fail(CheckSubject, "the token's %s claim holds control characters", v.cfg.subjectClaim())
	}
	id.Subject = subject

	id.ClientID = v.client(c, aud)
	if exp.ClientID != "" {
		if id.ClientID != exp.ClientID || (hasAzp && tt == IDToken && azp != exp.ClientID) {
			return fail(CheckClient, "the token was issued to another client")
		}
	}
	if exp.Nonce != "" {
		n, _ := c["nonce"].(string)
		if subtle.ConstantTimeCompare([]byte(n), []byte(exp.Nonce)) != 1 {
			return fail(CheckNonce, "the ID token's nonce does not match the sign-in request")
		}
	}
	for k, want := range v.cfg.RequiredClaims {
		if !claimHas(c[k], want) {
			return fail(CheckRequired, "required claim %s is missing or has another value", k)
		}
	}
	if s, ok := c["jti"].(string); ok {
		id.JTI = s
	}
	if raw, present := c["cnf"]; present {
		// RFC 7800: only a DPoP key (jkt, RFC 9449 section 6.1) can be
		// proven here. A token bound another way (x5t#S256, RFC 8705)
		// is not a bearer token, and keyless cannot check its holder:
		// refuse it rather than treat it as one.
		cnf, ok := raw.(map[string]any)
		jkt, isStr := cnf["jkt"].(string)
		if !ok || len(cnf) != 1 || !isStr || jkt == "" {
			return fail(CheckFormat, "the token is bound by a confirmation method other than DPoP (cnf.jkt), which keyless cannot check")
		}
		id.JKT = jkt
	}
	switch s := c["scope"].(type) {
	case string:
		id.Scope = strings.Fields(s)
	default:
		if l, ok := stringOrList(c["scp"]); ok {
			for _, x := range l {
				id.Scope = append(id.Scope, strings.Fields(x)...)
			}
		}
	}
	groups, err := v.groups(c)
	if err != nil {
		return nil, err
	}
	id.Groups = groups
	return id, nil
}

// client is the client the token was issued to: client_claim, else
// client_id, else azp, else a single aud.
func (v *Validator) client(c map[string]any, aud []string) string {
	if v.cfg.ClientClaim != "" {
		s, _ := c[v.cfg.ClientClaim].(string)
		return s
	}
	for _, k := range []string{"client_id", "azp"} {
		if s, ok := c[k].(string); ok && s != "" {
			return s
		}
	}
	if len(aud) == 1 {
		return aud[0]
	}
	return ""
}

// Limits on the groups claim.
const (
	maxGroups   = 256
	maxGroupLen = 256
)

// groups reads groups_claim and maps it through group_map.
func (v *Validator) groups(c map[string]any) ([]string, error) {
	if v.cfg.GroupsClaim == "" {
		return nil, nil
	}
	raw, present := c[v.cfg.GroupsClaim]
	if !present {
		return nil, nil
	}
	gs, ok := stringOrList(raw)
	if !ok || len(gs) > maxGroups {
		return nil, refuse(CheckGroups, v.cfg.Name, "the token's %s claim is not a list of at most %d strings", v.cfg.GroupsClaim, maxGroups)
	}
	var out []string
	for _, g := range gs {
		if g == "" || len(g) > maxGroupLen || hasControl(g) {
			continue
		}
		if len(v.cfg.GroupMap) == 0 {
			out = append(out, g)
			continue
		}
		out = append(out, v.cfg.GroupMap[g]...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// typAllowed: an ID token has no typ or JWT (never at+jwt, RFC 9068
// section 4: an access token must not pass as an ID token); an access
// token or plain JWT has no typ, JWT, or at+jwt (RFC 9068 section 2.1),
// with or without "application/", case-insensitively (RFC 7515 section
// 4.1.9).
func typAllowed(typ string, tt TokenType) bool {
	t := strings.TrimPrefix(strings.ToLower(typ), "application/")
	switch t {
	case "", "jwt":
		return true
	case "at+jwt":
		return tt != IDToken
	}
	return false
}

// safeTyp and safeAlg quote header values only when they are well-known
// names, so descriptions never carry token bytes.
func safeTyp(typ string) string {
	switch t := strings.TrimPrefix(strings.ToLower(typ), "application/"); t {
	case "at+jwt", "dpop+jwt", "jwt", "logout+jwt", "secevent+jwt", "token-introspection+jwt", "jwe", "jose":
		return t
	}
	return "(unknown)"
}

func safeAlg(alg string) string {
	if slices.Contains(SupportedAlgs, alg) {
		return alg
	}
	switch alg {
	case "none", "HS256", "HS384", "HS512", "ES256K", "Ed25519", "Ed448":
		return alg
	}
	return "an unknown alg"
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

func rsaBigEnough(pub any) bool {
	if k, ok := pub.(*rsa.PublicKey); ok {
		return k.N.BitLen() >= MinRSABits
	}
	return true
}

// stringOrList reads a claim that is a string or a list of strings.
func stringOrList(v any) ([]string, bool) {
	switch x := v.(type) {
	case string:
		return []string{x}, true
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// numericDate reads a NumericDate claim (RFC 7519 section 2): a JSON
// number, fractions allowed (docs/security.md decision 12); a string is
// not one. ok is false when the claim is absent.
func numericDate(c map[string]any, k string) (t time.Time, ok bool, err error) {
	v, present := c[k]
	if !present {
		return time.Time{}, false, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return time.Time{}, false, fmt.Errorf("%s is not a number", k)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, false, fmt.Errorf("%s is out of range", k)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// claimHas compares a claim with a required value from YAML: equal
// scalars, or a list containing the value.
func claimHas(claim, want any) bool {
	if l, ok := claim.([]any); ok {
		return slices.ContainsFunc(l, func(e any) bool { return scalarEqual(e, want) })
	}
	return scalarEqual(claim, want)
}

func scalarEqual(claim, want any) bool {
	switch w := want.(type) {
	case string:
		s, ok := claim.(string)
		return ok && s == w
	case bool:
		b, ok := claim.(bool)
		return ok && b == w
	case int, int64, float64:
		n, ok := claim.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		return err == nil && f == toFloat(w)
	}
	return false
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case float64:
		return x
	}
	return math.NaN()
}
