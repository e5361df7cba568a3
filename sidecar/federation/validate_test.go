package federation

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

const testIssuer = "https://idp.example.test"

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func staticValidator(t *testing.T, cfg Config, ks ...testKey) *Validator {
	t.Helper()
	var keys StaticKeys
	for _, k := range ks {
		keys = append(keys, Key{KID: k.kid, Public: k.priv.Public()})
	}
	if cfg.Name == "" {
		cfg.Name = "corp"
	}
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	if cfg.Audience == nil {
		cfg.Audience = StringList{"keyless"}
	}
	v, err := New(cfg, Options{Keys: keys, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// with returns a copy of base with the changes applied (nil deletes).
func with(base map[string]any, changes map[string]any) map[string]any {
	m := maps.Clone(base)
	for k, v := range changes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// Shapes of real providers' tokens (claims as each documents them).
func dexIDToken() map[string]any {
	return map[string]any{"iss": testIssuer, "sub": "CgVhbGljZRIEbG9jYWw", "aud": []string{"keyless", "where2eat"},
		"azp": "where2eat", "exp": t0.Add(10 * time.Minute).Unix(), "iat": t0.Unix(), "nonce": "n-1",
		"email": "alice@example.com", "email_verified": true, "groups": []string{"eng", "admins"}}
}

func keycloakAccessToken() map[string]any {
	return map[string]any{"iss": testIssuer, "sub": "f1b7-uuid", "aud": []string{"keyless", "account"},
		"azp": "where2eat", "exp": t0.Add(5 * time.Minute).Unix(), "iat": t0.Unix(), "jti": "kc-1",
		"typ": "Bearer", "scope": "openid email", "preferred_username": "alice", "groups": []string{"/eng"}}
}

func entraAccessToken() map[string]any {
	return map[string]any{"iss": testIssuer, "sub": "pairwise-sub", "oid": "00000000-0000-0000-0000-0000000000a1",
		"aud": "keyless", "appid": "where2eat", "tid": "tenant-1", "exp": t0.Add(time.Hour).Unix(),
		"nbf": t0.Add(-time.Minute).Unix(), "iat": t0.Add(-time.Minute).Unix(), "scp": "orders.read",
		"groups": []string{"g-guid-1"}}
}

func rfc9068AccessToken() map[string]any {
	return map[string]any{"iss": testIssuer, "sub": "alice", "aud": "keyless", "client_id": "where2eat",
		"exp": t0.Add(5 * time.Minute).Unix(), "iat": t0.Unix(), "jti": "at-1", "scope": "orders:read",
		"cnf": map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}
}

func TestValidateAccepts(t *testing.T) {
	rs, ps, es, ed, _ := testKeys(t)
	tests := []struct {
		name   string
		cfg    Config
		key    testKey
		hdr    map[string]any
		claims map[string]any
		exp    Expect
		check  func(t *testing.T, id *Identity)
	}{
		{name: "dex ID token, RS256, no typ, list aud with azp",
			cfg: Config{GroupsClaim: "groups"}, key: rs, claims: dexIDToken(),
			exp: Expect{Type: IDToken, ClientID: "where2eat", Nonce: "n-1"},
			check: func(t *testing.T, id *Identity) {
				if id.Subject != "CgVhbGljZRIEbG9jYWw" || id.ClientID != "where2eat" || id.Issuer != "corp" {
					t.Errorf("identity = %+v", id)
				}
				if !slices.Equal(id.Groups, []string{"admins", "eng"}) {
					t.Errorf("groups = %v", id.Groups)
				}
			}},
		{name: "keycloak access token, typ JWT, subject preferred_username, group_map",
			cfg: Config{SubjectClaim: "preferred_username", GroupsClaim: "groups",
				GroupMap: map[string]StringList{"/eng": {"engineering", "staff"}}},
			key: rs, hdr: map[string]any{"typ": "JWT"}, claims: keycloakAccessToken(),
			exp: Expect{Type: AccessToken, ClientID: "where2eat"},
			check: func(t *testing.T, id *Identity) {
				if id.Subject != "alice" || id.Sub != "f1b7-uuid" || !slices.Equal(id.Groups, []string{"engineering", "staff"}) {
					t.Errorf("identity = %+v", id)
				}
			}},
		{name: "entra v1 token, client in appid, subject oid, required tid",
			cfg: Config{ClientClaim: "appid", SubjectClaim: "oid", RequiredClaims: map[string]any{"tid": "tenant-1"}},
			key: ps, claims: entraAccessToken(), exp: Expect{Type: AccessToken, ClientID: "where2eat"},
			check: func(t *testing.T, id *Identity) {
				if id.Subject != "00000000-0000-0000-0000-0000000000a1" || !slices.Equal(id.Scope, []string{"orders.read"}) {
					t.Errorf("identity = %+v", id)
				}
			}},
		{name: "RFC 9068 at+jwt, ES256, DPoP-bound",
			key: es, hdr: map[string]any{"typ": "at+jwt"}, claims: rfc9068AccessToken(), exp: Expect{Type: AccessToken},
			check: func(t *testing.T, id *Identity) {
				if id.JKT == "" || id.JTI != "at-1" || id.ClientID != "where2eat" || !id.Expiry.Equal(t0.Add(5*time.Minute)) {
					t.Errorf("identity = %+v", id)
				}
			}},
		{name: "application/at+jwt as plain JWT type, EdDSA",
			key: ed, hdr: map[string]any{"typ": "application/AT+JWT"}, claims: rfc9068AccessToken(), exp: Expect{}},
		{name: "required claim email_verified true",
			cfg: Config{RequiredClaims: map[string]any{"email_verified": true}}, key: rs, claims: dexIDToken(),
			exp: Expect{Type: IDToken}},
		{name: "no kid, one usable key",
			key: es, hdr: map[string]any{"kid": nil}, claims: rfc9068AccessToken()},
		{name: "exp within leeway",
			key: es, claims: with(rfc9068AccessToken(), map[string]any{"exp": t0.Add(-10 * time.Second).Unix()})},
		{name: "fractional NumericDate",
			key: es, claims: with(rfc9068AccessToken(), map[string]any{"exp": float64(t0.Add(time.Minute).Unix()) + 0.5})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := staticValidator(t, tt.cfg, rs, es, ed)
			id, err := v.Validate(context.Background(), sign(t, tt.key, tt.hdr, tt.claims), tt.exp)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.check != nil {
				tt.check(t, id)
			}
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	rs, _, es, _, small := testKeys(t)
	// HS256 "keyed" with the RSA public key's PEM: the classic forgery.
	der, _ := x509.MarshalPKIXPublicKey(rs.priv.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hs := func(claims map[string]any) string {
		hb := `{"alg":"HS256","kid":"rsa-1"}`
		input := b64.EncodeToString([]byte(hb)) + "." + b64.EncodeToString(mustJSON(claims))
		s, _ := jws.NewSigner(jwa.HS256)
		sig, _ := s.Sign([]byte(input), pubPEM)
		return input + "." + b64.EncodeToString(sig)
	}
	none := func(claims map[string]any) string {
		return b64.EncodeToString([]byte(`{"alg":"none"}`)) + "." + b64.EncodeToString(mustJSON(claims)) + "."
	}
	forged := func(claims map[string]any) string {
		tok := sign(t, rs, nil, dexIDToken())
		parts := splitJWT(tok)
		return parts[0] + "." + b64.EncodeToString(mustJSON(claims)) + "." + parts[2]
	}
	tests := []struct {
		name  string
		cfg   Config
		raw   string
		exp   Expect
		check Check
	}{
		{"wrong audience", Config{}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"aud": []string{"other", "where2eat"}})), Expect{Type: IDToken}, CheckAudience},
		{"another client (azp)", Config{}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"azp": "evil-app"})), Expect{Type: IDToken, ClientID: "where2eat"}, CheckClient},
		{"another client (client_id)", Config{}, sign(t, es, nil, rfc9068AccessToken()), Expect{ClientID: "other"}, CheckClient},
		{"entra appid of another app", Config{ClientClaim: "appid"}, sign(t, rs, nil, with(entraAccessToken(), map[string]any{"appid": "x"})), Expect{ClientID: "where2eat"}, CheckClient},
		{"ID token with several audiences and no azp", Config{}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"azp": nil})), Expect{Type: IDToken}, CheckAzp},
		{"expired", Config{}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"exp": t0.Add(-time.Minute).Unix()})), Expect{}, CheckExpiry},
		{"no exp", Config{}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"exp": nil})), Expect{}, CheckExpiry},
		{"exp as a string", Config{}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"exp": "9999999999"})), Expect{}, CheckExpiry},
		{"nbf in the future", Config{}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"nbf": t0.Add(2 * time.Minute).Unix()})), Expect{}, CheckNotBefore},
		{"iat in the future", Config{}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"iat": t0.Add(2 * time.Minute).Unix()})), Expect{}, CheckIssuedAt},
		{"ID token without iat", Config{}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"iat": nil})), Expect{Type: IDToken}, CheckIssuedAt},
		{"iss of another issuer", Config{}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"iss": "https://evil.example.test"})), Expect{}, CheckIssuer},
		{"iss with trailing slash", Config{}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"iss": testIssuer + "/"})), Expect{}, CheckIssuer},
		{"forged signature (claims changed)", Config{}, forged(with(dexIDToken(), map[string]any{"sub": "admin"})), Expect{}, CheckSignature},
		{"alg none", Config{}, none(dexIDToken()), Expect{}, CheckAlg},
		{"HS256 keyed with the RSA public key", Config{}, hs(dexIDToken()), Expect{}, CheckAlg},
		{"alg not in the issuer's list", Config{Algs: []string{"ES256"}}, sign(t, rs, nil, dexIDToken()), Expect{}, CheckAlg},
		{"unknown kid", Config{}, sign(t, testKey{"gone", "RS256", rs.priv}, nil, dexIDToken()), Expect{}, CheckKey},
		{"RSA key below 2048 bits", Config{}, sign(t, small, nil, dexIDToken()), Expect{}, CheckKey},
		{"EC kid used with RS256", Config{}, sign(t, testKey{"ec-1", "RS256", rs.priv}, nil, dexIDToken()), Expect{}, CheckKey},
		{"crit header", Config{}, sign(t, rs, map[string]any{"crit": []string{"exp"}, "exp": 1}, dexIDToken()), Expect{}, CheckCrit},
		{"at+jwt presented as an ID token", Config{}, sign(t, es, map[string]any{"typ": "at+jwt"}, rfc9068AccessToken()), Expect{Type: IDToken}, CheckTyp},
		{"DPoP proof as a token", Config{}, sign(t, es, map[string]any{"typ": "dpop+jwt"}, rfc9068AccessToken()), Expect{}, CheckTyp},
		{"token type not allowed", Config{TokenTypes: []TokenType{AccessToken}}, sign(t, rs, nil, dexIDToken()), Expect{Type: IDToken}, CheckTokenType},
		{"required claim missing", Config{RequiredClaims: map[string]any{"tid": "tenant-1"}}, sign(t, rs, nil, dexIDToken()), Expect{}, CheckRequired},
		{"required claim false", Config{RequiredClaims: map[string]any{"email_verified": true}}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"email_verified": false})), Expect{}, CheckRequired},
		{"required claim as a string", Config{RequiredClaims: map[string]any{"email_verified": true}}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"email_verified": "true"})), Expect{}, CheckRequired},
		{"nonce mismatch", Config{}, sign(t, rs, nil, dexIDToken()), Expect{Type: IDToken, Nonce: "n-2"}, CheckNonce},
		{"nonce missing", Config{}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"nonce": nil})), Expect{Type: IDToken, Nonce: "n-1"}, CheckNonce},
		{"mTLS-bound (cnf x5t#S256)", Config{}, sign(t, es, nil, with(rfc9068AccessToken(), map[string]any{"cnf": map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}})), Expect{}, CheckFormat},
		{"cnf.jkt beside another method", Config{}, sign(t, es, nil, with(rfc9068AccessToken(), map[string]any{"cnf": map[string]any{"jkt": "x", "x5t#S256": "y"}})), Expect{}, CheckFormat},
		{"subject with a line break", Config{}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"sub": "eve\r\nX-Keyless-Sub: root"})), Expect{}, CheckSubject},
		{"no sub", Config{}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"sub": nil})), Expect{}, CheckSubject},
		{"subject claim missing", Config{SubjectClaim: "oid"}, sign(t, rs, nil, dexIDToken()), Expect{}, CheckSubject},
		{"groups not strings", Config{GroupsClaim: "groups"}, sign(t, rs, nil, with(dexIDToken(), map[string]any{"groups": []any{1, 2}})), Expect{}, CheckGroups},
		{"duplicate claim", Config{}, dupClaims(t, rs), Expect{}, CheckFormat},
		{"not a JWT", Config{}, "abc.def", Expect{}, CheckFormat},
		{"too large", Config{}, string(make([]byte, DefaultMaxSize+1)), Expect{}, CheckFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := staticValidator(t, tt.cfg, rs, es, small)
			id, err := v.Validate(context.Background(), tt.raw, tt.exp)
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %+v, %v; want a refusal", id, err)
			}
			if fe.Check != tt.check || !errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnavailable) || fe.Issuer != "corp" {
				t.Errorf("refusal = %v (check %v); want check %v, ErrInvalid", err, fe.Check, tt.check)
			}
			if fe.Msg == "" || containsAny(fe.Msg, "CgVhbGljZRIEbG9jYWw", "alice", "admin") {
				t.Errorf("description %q is empty or quotes the token", fe.Msg)
			}
		})
	}
}

func TestRefusalDescriptions(t *testing.T) {
	rs, _, es, _, _ := testKeys(t)
	v := staticValidator(t, Config{Algs: []string{"ES256"}}, rs, es)
	_, err := v.Validate(context.Background(), sign(t, rs, nil, dexIDToken()), Expect{})
	if want := "federation: alg: signed with RS256, which issuer corp does not allow (allowed: ES256)"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	v = staticValidator(t, Config{}, rs)
	_, err = v.Validate(context.Background(), sign(t, rs, nil, with(dexIDToken(), map[string]any{"aud": "x"})), Expect{})
	if want := "federation: aud: audience does not include keyless"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]Config{
		"no name":            {Issuer: testIssuer, Audience: StringList{"k"}},
		"bad name":           {Name: "a b", Issuer: testIssuer, Audience: StringList{"k"}},
		"http issuer":        {Name: "a", Issuer: "http://idp.example.test", Audience: StringList{"k"}},
		"no audience":        {Name: "a", Issuer: testIssuer},
		"HS256":              {Name: "a", Issuer: testIssuer, Audience: StringList{"k"}, Algs: []string{"HS256"}},
		"none":               {Name: "a", Issuer: testIssuer, Audience: StringList{"k"}, Algs: []string{"none"}},
		"unknown token type": {Name: "a", Issuer: testIssuer, Audience: StringList{"k"}, TokenTypes: []TokenType{"saml2"}},
		"leeway too large":   {Name: "a", Issuer: testIssuer, Audience: StringList{"k"}, Leeway: Duration(5 * time.Minute)},
		"required list":      {Name: "a", Issuer: testIssuer, Audience: StringList{"k"}, RequiredClaims: map[string]any{"x": []any{"a"}}},
	}
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			if err := c.Validate("vending.issuers[0]"); err == nil {
				t.Error("Validate = nil, want an error")
			}
		})
	}
	ok := Config{Name: "corp", Issuer: "http://127.0.0.1:8080/realms/x", Audience: StringList{"a", "b"}}
	if err := ok.Validate("x"); err != nil {
		t.Errorf("Validate = %v", err)
	}
}

func dupClaims(t *testing.T, k testKey) string {
	hb := `{"alg":"RS256","kid":"rsa-1"}`
	pb := `{"iss":"` + testIssuer + `","sub":"a","sub":"b","aud":"keyless","exp":9999999999}`
	input := b64.EncodeToString([]byte(hb)) + "." + b64.EncodeToString([]byte(pb))
	s, _ := jws.NewSigner(jwa.RS256)
	sig, err := s.Sign([]byte(input), k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}
