package oidclogin

import (
	"context"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Algs are the ID-token signature algorithms accepted: asymmetric only.
// "none" and the HMAC algorithms are never accepted: an HMAC keyed with a
// public key is the classic forgery (RFC 8725 section 2.1).
var Algs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Leeway is the clock skew allowed on exp and iat.
const Leeway = 60 * time.Second

// maxIDToken bounds an ID token before anything is decoded.
const maxIDToken = 16 << 10

// maxGroups bounds the groups read from a token.
const maxGroups = 64

// Validate checks an ID token as OpenID Connect Core section 3.1.3.7
// requires of a confidential client using the code flow: signature by a
// key of the provider's JWKS with an allowed asymmetric alg (RSA keys of
// 2048 bits or more), exact iss, aud containing client_id, azp equal to
// client_id when present or when there are several audiences, exp (with
// [Leeway]), iat not in the future, and the nonce sent in the request.
// Then it maps the claims to an [Identity].
//
// TODO(federation): the external-token validator of the vending service
// (docs/identity-providers.md) implements the same checks; switch to it
// once it is in.
//
// https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation
func (p *Provider) Validate(ctx context.Context, raw, nonce string) (*Identity, error) {
	bad := func(format string, a ...any) (*Identity, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrIDToken}, a...)...)
	}
	if len(raw) > maxIDToken {
		return bad("larger than %d bytes", maxIDToken)
	}
	msg, err := jws.Parse([]byte(raw), jws.WithCompact())
	if err != nil || len(msg.Signatures()) != 1 {
		return bad("not a compact JWS")
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg := hdr.Algorithm().String()
	if !slices.Contains(Algs, alg) {
		return bad("signed with %q, which is not an allowed algorithm", alg)
	}
	key, err := p.key(ctx, hdr.KeyID(), alg)
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify([]byte(raw), jws.WithKey(jwa.SignatureAlgorithm(alg), key))
	if err != nil {
		return bad("signature does not verify with the provider's key")
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(payload, &c); err != nil {
		return bad("claims are not a JSON object")
	}
	str := func(name string) string {
		var s string
		_ = json.Unmarshal(c[name], &s)
		return s
	}
	if iss := str("iss"); iss != p.cfg.Issuer {
		return bad("iss is not the configured issuer")
	}
	aud, ok := audience(c["aud"])
	if !ok || !slices.Contains(aud, p.cfg.ClientID) {
		return bad("aud does not include keyless's client_id")
	}
	_, hasAzp := c["azp"]
	if hasAzp || len(aud) > 1 {
		if !hasAzp || str("azp") != p.cfg.ClientID {
			return bad("azp is not keyless's client_id")
		}
	}
	now := p.now()
	exp, ok := numeric(c["exp"])
	if !ok {
		return bad("exp is missing")
	}
	if !now.Before(exp.Add(Leeway)) {
		return bad("expired")
	}
	iat, ok := numeric(c["iat"])
	if !ok {
		return bad("iat is missing")
	}
	if iat.After(now.Add(Leeway)) {
		return bad("iat is in the future")
	}
	if nbf, ok := numeric(c["nbf"]); ok && nbf.After(now.Add(Leeway)) {
		return bad("not valid yet (nbf)")
	}
	if got := str("nonce"); nonce == "" || subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1 {
		return bad("nonce does not match the sign-in request")
	}
	return p.identity(c)
}

// identity maps verified claims: the subject claim (a non-empty string)
// prefixed with the provider's name, and the groups claim through
// group_map.
func (p *Provider) identity(c map[string]json.RawMessage) (*Identity, error) {
	var sub string
	if err := json.Unmarshal(c[p.cfg.Subject()], &sub); err != nil || sub == "" || len(sub) > 255 ||
		strings.IndexFunc(sub, func(r rune) bool { return r < 0x21 || r == 0x7f }) >= 0 {
		return nil, fmt.Errorf("%w: claim %q is missing or not a printable string", ErrIDToken, p.cfg.Subject())
	}
	id := &Identity{Provider: p.cfg.Name, Subject: p.cfg.Name + ":" + sub}
	if p.cfg.GroupsClaim == "" {
		return id, nil
	}
	var gs []string
	if v, ok := c[p.cfg.GroupsClaim]; ok {
		if err := json.Unmarshal(v, &gs); err != nil || len(gs) > maxGroups {
			return nil, fmt.Errorf("%w: claim %q is not a list of at most %d strings", ErrIDToken, p.cfg.GroupsClaim, maxGroups)
		}
	}
	id.Groups = MapGroups(gs, p.cfg.GroupMap)
	return id, nil
}

// MapGroups returns the policy groups of the provider groups gs: each
// through m, dropping those m does not name, without duplicates, sorted.
func MapGroups(gs []string, m map[string]string) []string {
	var out []string
	for _, g := range gs {
		if v, ok := m[g]; ok && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

func audience(raw json.RawMessage) ([]string, bool) {
	var one string
	if json.Unmarshal(raw, &one) == nil && one != "" {
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil && len(many) > 0 {
		return many, true
	}
	return nil, false
}

// numeric reads a NumericDate (RFC 7519 section 2), up to year 9999.
func numeric(raw json.RawMessage) (time.Time, bool) {
	var f float64
	if json.Unmarshal(raw, &f) != nil || f < 0 || f > 253402300799 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// key returns the JWKS key for kid usable with alg, reading the JWKS
// again (at most once per RefreshInterval) when kid is unknown: the
// provider may have rotated.
func (p *Provider) key(ctx context.Context, kid, alg string) (jwk.Key, error) {
	for attempt := 0; attempt < 2; attempt++ {
		set, err := p.jwks(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		for i := 0; i < set.Len(); i++ {
			k, _ := set.Key(i)
			if kid != "" && k.KeyID() != kid {
				continue
			}
			if a := k.Algorithm().String(); a != "" && a != alg {
				continue
			}
			if u := k.KeyUsage(); u != "" && u != "sig" {
				continue
			}
			if !keyFits(k, alg) {
				continue
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: no key of the provider's JWKS has kid %q for %s", ErrIDToken, kid, alg)
}

// keyFits: the key's type is the alg's, and an RSA key has at least 2048
// bits (RFC 7518 section 3.3).
func keyFits(k jwk.Key, alg string) bool {
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		var pub rsa.PublicKey
		if k.KeyType() != jwa.RSA || k.Raw(&pub) != nil {
			return false
		}
		return pub.N.BitLen() >= 2048
	case strings.HasPrefix(alg, "ES"):
		return k.KeyType() == jwa.EC
	case alg == "EdDSA":
		return k.KeyType() == jwa.OKP
	}
	return false
}

// jwks returns the provider's key set, cached for MetadataTTL; force reads
// it again unless it was read less than RefreshInterval ago.
func (p *Provider) jwks(ctx context.Context, force bool) (jwk.Set, error) {
	p.mu.Lock()
	now := p.now()
	if p.keys != nil && (!force && now.Sub(p.keysAt) < p.ttl || force && now.Sub(p.keysTried) < p.refresh) {
		k := p.keys
		p.mu.Unlock()
		return k, nil
	}
	p.keysTried = now
	p.mu.Unlock()
	m, err := p.Discover(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.JWKSURI, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProvider, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: jwks: %v", ErrProvider, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: jwks answered %d", ErrProvider, resp.StatusCode)
	}
	set, err := jwk.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%w: jwks is not a JWK Set: %v", ErrProvider, err)
	}
	p.mu.Lock()
	p.keys, p.keysAt = set, now
	p.mu.Unlock()
	return set, nil
}

// Check is `keyless doctor`'s test of the provider: discovery (issuer
// matches, endpoints usable, code flow with S256 when listed), the JWKS
// reachable, and at least one key of an allowed algorithm.
func (p *Provider) Check(ctx context.Context) error {
	m, err := p.Discover(ctx)
	if err != nil {
		return err
	}
	if len(m.CodeChallengeMethods) > 0 && !slices.Contains(m.CodeChallengeMethods, "S256") {
		return fmt.Errorf("%w: the provider does not list PKCE S256 in code_challenge_methods_supported", ErrProvider)
	}
	set, err := p.jwks(ctx, false)
	if err != nil {
		return err
	}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		for _, alg := range Algs {
			if a := k.Algorithm().String(); (a == "" || a == alg) && keyFits(k, alg) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: the JWKS has no key for %s", ErrProvider, strings.Join(Algs, ", "))
}
