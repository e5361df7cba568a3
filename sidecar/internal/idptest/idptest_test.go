package idptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
)

func part(t *testing.T, jwt string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The harness itself: the tokens have the shapes the tests rely on.
func TestDeviceFlow(t *testing.T) {
	p := Start(t)
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, err := dpop.NewECDSASigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	tok := p.DeviceFlow(t, Flow{DPoP: key})
	if tok.TokenType != "DPoP" {
		t.Errorf("token_type = %q", tok.TokenType)
	}
	h, c := part(t, tok.AccessToken, 0), part(t, tok.AccessToken, 1)
	cnf, _ := c["cnf"].(map[string]any)
	if h["typ"] != "at+jwt" || h["alg"] != "ES256" || c["aud"] != Resource || c["sub"] != "alice" || cnf["jkt"] != key.PublicJWK().Thumbprint() {
		t.Errorf("access token header %v claims %v", h, c)
	}
	h, c = part(t, tok.IDToken, 0), part(t, tok.IDToken, 1)
	if h["alg"] != "RS256" || c["aud"] != ClientID || c["iss"] != p.Issuer || c["email_verified"] != true {
		t.Errorf("ID token header %v claims %v", h, c)
	}
	bearer := p.DeviceFlow(t, Flow{Login: "bob"})
	if bearer.TokenType != "Bearer" || part(t, bearer.AccessToken, 1)["cnf"] != nil || part(t, bearer.IDToken, 1)["sub"] != "bob" {
		t.Errorf("bearer flow: %+v", bearer)
	}
}

// Options reach the provider: tokens live TTL, and the allowed origin
// may call the token endpoint from a page (CORS), another may not.
func TestStartWith(t *testing.T) {
	p := StartWith(t, Options{CORSOrigins: []string{"http://127.0.0.1:9999"}, TTL: 90 * time.Second})
	tok := p.DeviceFlow(t, Flow{})
	c := part(t, tok.IDToken, 1)
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 90 {
		t.Errorf("ID token lives %v s, want 90", exp-iat)
	}
	for origin, want := range map[string]string{"http://127.0.0.1:9999": "http://127.0.0.1:9999", "http://evil.test": ""} {
		req, _ := http.NewRequest(http.MethodPost, p.Metadata.TokenEndpoint, strings.NewReader("client_id=demo-app&grant_type=refresh_token&refresh_token=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("Origin %s: Access-Control-Allow-Origin = %q, want %q", origin, got, want)
		}
	}
}
