package oidclogin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/keyless-dev/keyless/sidecar/config"
)

// testIdP serves discovery and a JWKS for the validation tests: these
// check keyless's side of OpenID Connect Core 3.1.3.7 with tokens no real
// provider would issue (expired, forged, wrong audience). The real
// provider, Ory Hydra, runs in sidecar/cmd/keyless's hydra_test.go.
type testIdP struct {
	srv   *httptest.Server
	rsa   *rsa.PrivateKey
	ec    *ecdsa.PrivateKey
	small *rsa.PrivateKey // 1024 bits: below the 2048-bit floor
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	idp := &testIdP{}
	idp.rsa, _ = rsa.GenerateKey(rand.Reader, 2048)
	idp.ec, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	idp.small, _ = rsa.GenerateKey(rand.Reader, 1024)
	set := jwk.NewSet()
	for kid, k := range map[string]any{"rsa": &idp.rsa.PublicKey, "ec": &idp.ec.PublicKey, "small": &idp.small.PublicKey} {
		j, err := jwk.FromRaw(k)
		if err != nil {
			t.Fatal(err)
		}
		_ = j.Set(jwk.KeyIDKey, kid)
		_ = set.AddKey(j)
	}
	mux := http.NewServeMux()
	idp.srv = httptest.NewServer(mux)
	t.Cleanup(idp.srv.Close)
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": idp.srv.URL, "authorization_endpoint": idp.srv.URL + "/auth",
			"token_endpoint": idp.srv.URL + "/token", "jwks_uri": idp.srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	return idp
}

func (idp *testIdP) provider(now time.Time) *Provider {
	return New(config.OIDCLogin{Name: "corp", Issuer: idp.srv.URL, ClientID: "keyless", GroupsClaim: "groups",
		GroupMap: map[string]string{"g-admins": "admins", "g-ops": "ops"}}, "secret", "http://127.0.0.1/device/callback",
		Options{Now: func() time.Time { return now }})
}

// sign makes a compact JWS with the given header alg and kid.
func sign(t *testing.T, alg jwa.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(claims)
	h := jws.NewHeaders()
	_ = h.Set(jws.KeyIDKey, kid)
	raw, err := jws.Sign(b, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestValidate(t *testing.T) {
	idp := newTestIdP(t)
	now := time.Unix(1_800_000_000, 0)
	good := func() map[string]any {
		return map[string]any{"iss": idp.srv.URL, "aud": "keyless", "sub": "u1", "exp": now.Add(5 * time.Minute).Unix(),
			"iat": now.Unix(), "nonce": "n-1", "groups": []string{"g-ops", "g-admins", "g-other", "g-ops"}}
	}
	with := func(k string, v any) map[string]any { c := good(); c[k] = v; return c }
	without := func(k string) map[string]any { c := good(); delete(c, k); return c }
	rsaSigned := func(c map[string]any) string { return sign(t, jwa.RS256, idp.rsa, "rsa", c) }
	pubDER, _ := json.Marshal(idp.rsa.PublicKey) // any bytes an attacker knows
	hsWithPublic := sign(t, jwa.HS256, pubDER, "rsa", good())
	noneTok := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"rsa"}`)) + "." +
		base64.RawURLEncoding.EncodeToString(mustJSON(good())) + "."
	forged := rsaSigned(good())
	forged = forged[:strings.LastIndex(forged, ".")+1] + base64.RawURLEncoding.EncodeToString(make([]byte, 256))

	tests := []struct {
		name    string
		token   string
		nonce   string
		wantErr string // substring; "" means valid
	}{
		{"RS256", rsaSigned(good()), "n-1", ""},
		{"ES256", sign(t, jwa.ES256, idp.ec, "ec", good()), "n-1", ""},
		{"aud list with azp", rsaSigned(func() map[string]any {
			c := with("aud", []string{"other", "keyless"})
			c["azp"] = "keyless"
			return c
		}()), "n-1", ""},
		{"wrong audience", rsaSigned(with("aud", "another-client")), "n-1", "audience does not include keyless"},
		{"several audiences without azp", rsaSigned(with("aud", []string{"other", "keyless"})), "n-1", "azp"},
		{"azp of another client", rsaSigned(with("azp", "another-client")), "n-1", "issued to another client"},
		{"another issuer", rsaSigned(with("iss", "https://evil.example")), "n-1", "iss"},
		{"expired", rsaSigned(with("exp", now.Add(-2*time.Minute).Unix())), "n-1", "expired"},
		{"no exp", rsaSigned(without("exp")), "n-1", "exp"},
		{"iat in the future", rsaSigned(with("iat", now.Add(5*time.Minute).Unix())), "n-1", "iat"},
		{"nbf in the future", rsaSigned(with("nbf", now.Add(5*time.Minute).Unix())), "n-1", "nbf"},
		{"nonce mismatch", rsaSigned(good()), "n-2", "nonce"},
		{"no nonce in token", rsaSigned(without("nonce")), "n-1", "nonce"},
		{"no subject", rsaSigned(without("sub")), "n-1", "no sub claim"},
		{"alg none", noneTok, "n-1", "signed with none, which issuer corp does not allow"},
		{"HS256 keyed with the public key", hsWithPublic, "n-1", "signed with HS256, which issuer corp does not allow"},
		{"forged signature", forged, "n-1", "signature"},
		{"unknown kid", sign(t, jwa.RS256, idp.rsa, "rotated-away", good()), "n-1", "unknown kid"},
		{"RSA key under 2048 bits", sign(t, jwa.RS256, idp.small, "small", good()), "n-1", "unknown kid"},
		{"ES256 naming the RSA key", sign(t, jwa.ES256, idp.ec, "rsa", good()), "n-1", "no key"},
		{"not a JWS", "a.b", "n-1", "not a signed JWT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := idp.provider(now).Validate(context.Background(), tt.token, tt.nonce)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if id.Subject != "corp:u1" || !slices.Equal(id.Groups, []string{"admins", "ops"}) {
					t.Errorf("identity = %+v, want corp:u1 in [admins ops]", id)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate error = %v, want one containing %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrIDToken) {
				t.Errorf("error %v does not wrap ErrIDToken", err)
			}
		})
	}
}

func TestValidateProviderDown(t *testing.T) {
	idp := newTestIdP(t)
	now := time.Unix(1_800_000_000, 0)
	p := idp.provider(now)
	tok := sign(t, jwa.RS256, idp.rsa, "rsa", map[string]any{"iss": idp.srv.URL, "aud": "keyless", "sub": "u1",
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "nonce": "n"})
	idp.srv.Close()
	if _, err := p.Validate(context.Background(), tok, "n"); !errors.Is(err, ErrProvider) {
		t.Fatalf("Validate with the provider down = %v, want ErrProvider", err)
	}
}

func TestCheck(t *testing.T) {
	idp := newTestIdP(t)
	if err := idp.provider(time.Now()).Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	wrong := New(config.OIDCLogin{Name: "x", Issuer: idp.srv.URL + "/other", ClientID: "k"}, "s", "http://127.0.0.1/cb", Options{})
	if err := wrong.Check(context.Background()); !errors.Is(err, ErrProvider) {
		t.Errorf("Check with a wrong issuer = %v, want ErrProvider", err)
	}
}

// FuzzValidate: no input panics, and none passes without a valid
// signature.
func FuzzValidate(f *testing.F) {
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYSJ9.eyJzdWIiOiJ1In0.AAAA")
	idp := &testIdP{}
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	idp.srv = srv
	p := idp.provider(time.Now())
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := p.Validate(context.Background(), raw, "n"); err == nil {
			t.Fatal("a token validated without a JWKS")
		}
	})
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }
