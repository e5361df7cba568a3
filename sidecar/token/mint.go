package token

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// DefaultTTL is the access-token lifetime when a [Spec] names none.
const DefaultTTL = 10 * time.Minute

var b64 = base64.RawURLEncoding

// Spec describes one token to mint.
type Spec struct {
	// Subject is the sub claim: the user (or, for a lease, the user the
	// lease acts for). Required.
	Subject string
	// Audience is the aud claim: who may accept the token. Required.
	Audience []string
	// ClientID is the client_id claim: the app the token was issued to.
	// Required.
	ClientID string
	// Scope is the granted scopes, written space-separated in the scope
	// claim. Empty writes no scope claim.
	Scope []string
	// JKT is the DPoP key thumbprint written as cnf.jkt (RFC 9449 section
	// 6.1). Required: keyless never mints a token that is not
	// sender-constrained.
	JKT string
	// TTL is the lifetime: zero means DefaultTTL; more than MaxTTL is
	// clamped to MaxTTL (the returned Claims.Expiry tells the truth).
	TTL time.Duration
	// LeaseID, when set, writes the lease_id claim (vending service leases).
	LeaseID string
	// Preview, when true, writes "preview": true.
	Preview bool
	// Groups, when set, writes the groups claim: the subject's groups as
	// an upstream identity provider asserted them at sign-in (mapped
	// through the login provider's group_map, docs/identity-providers.md).
	// The vending service reads them from the embedded issuer's tokens.
	Groups []string
	// IdP, when set, writes the idp claim: the name of the external
	// issuer the lease's subject comes from.
	IdP string
	// JTI is the jti claim; empty means 128 random bits.
	JTI string
}

// Minter signs RFC 9068 access tokens with the active key of a [KeySet].
// It is safe for concurrent use.
type Minter struct {
	// Keys signs; required.
	Keys *KeySet
	// Issuer is the iss claim; required.
	Issuer string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// payload is the claim set in the order it is written.
type payload struct {
	Iss      string   `json:"iss"`
	Sub      string   `json:"sub"`
	Aud      any      `json:"aud"`
	Exp      int64    `json:"exp"`
	Iat      int64    `json:"iat"`
	Jti      string   `json:"jti"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope,omitempty"`
	Cnf      cnf      `json:"cnf"`
	LeaseID  string   `json:"lease_id,omitempty"`
	Preview  bool     `json:"preview,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	IdP      string   `json:"idp,omitempty"`
}

type cnf struct {
	JKT string `json:"jkt"`
}

// Issue mints a signed access token (a JWS compact JWT with typ at+jwt,
// RFC 9068 section 2) and returns it with the claims it carries.
//
// https://www.rfc-editor.org/rfc/rfc9068#section-2.2
func (m *Minter) Issue(_ context.Context, s Spec) (string, *Claims, error) {
	if m.Keys == nil || m.Issuer == "" {
		return "", nil, errors.New("token: minter needs Keys and Issuer")
	}
	switch {
	case s.Subject == "":
		return "", nil, errors.New("token: spec has no subject")
	case len(s.Audience) == 0 || slicesHasEmpty(s.Audience):
		return "", nil, errors.New("token: spec has no audience")
	case s.ClientID == "":
		return "", nil, errors.New("token: spec has no client id")
	case s.JKT == "":
		return "", nil, errors.New("token: spec has no cnf.jkt; keyless mints only DPoP-bound tokens")
	}
	for _, sc := range s.Scope {
		if sc == "" || strings.ContainsAny(sc, " \"\\") {
			return "", nil, fmt.Errorf("token: invalid scope token %q", sc)
		}
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	ttl = min(ttl, MaxTTL)
	jti := s.JTI
	if jti == "" {
		var err error
		if jti, err = RandomID(); err != nil {
			return "", nil, err
		}
	}
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	iat := now.Unix()
	exp := now.Add(ttl).Unix()
	p := payload{
		Iss: m.Issuer, Sub: s.Subject, Exp: exp, Iat: iat, Jti: jti, ClientID: s.ClientID,
		Scope: strings.Join(s.Scope, " "), Cnf: cnf{JKT: s.JKT}, LeaseID: s.LeaseID, Preview: s.Preview,
		Groups: s.Groups, IdP: s.IdP,
	}
	if len(s.Audience) == 1 {
		p.Aud = s.Audience[0]
	} else {
		p.Aud = s.Audience
	}
	body, err := json.Marshal(p)
	if err != nil {
		return "", nil, fmt.Errorf("token: %w", err)
	}
	k, err := m.Keys.activeAt(now)
	if err != nil {
		return "", nil, err
	}
	h := jws.NewHeaders()
	for name, v := range map[string]any{jws.TypeKey: "at+jwt", jws.KeyIDKey: k.kid} {
		if err := h.Set(name, v); err != nil {
			return "", nil, fmt.Errorf("token: %w", err)
		}
	}
	raw, err := jws.Sign(body, jws.WithKey(jwa.ES256, k.priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		return "", nil, fmt.Errorf("token: sign: %w", err)
	}
	c := &Claims{
		Issuer: m.Issuer, Subject: s.Subject, Audience: append([]string(nil), s.Audience...),
		ClientID: s.ClientID, JTI: jti, LeaseID: s.LeaseID, Scope: append([]string(nil), s.Scope...),
		JKT: s.JKT, Preview: s.Preview, IdP: s.IdP, Groups: append([]string(nil), s.Groups...), IssuedAt: time.Unix(iat, 0), Expiry: time.Unix(exp, 0),
	}
	return string(raw), c, nil
}

// RandomID returns 128 random bits, base64url-encoded: a jti, lease id or
// any other unguessable identifier.
func RandomID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token: random: %w", err)
	}
	return b64.EncodeToString(b[:]), nil
}

func slicesHasEmpty(s []string) bool {
	for _, v := range s {
		if v == "" {
			return true
		}
	}
	return false
}
