package lease

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/internal/nodetest"
)

// TestOAuth4WebAPIExchange: a real third-party OAuth client performs the
// token exchange with DPoP, and a real RFC 9068 validator accepts the
// lease with the client's resource-request proof (docs/security.md#i-5, #i-7).
func TestOAuth4WebAPIExchange(t *testing.T) {
	nodetest.Require(t, "oauth4webapi", "jose", "dpop")
	// Node checks iat and exp against its own clock: use the real one.
	h := newHarness(t, func(h *harness) { h.clk = &clock{Real: true} })
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := dpop.NewECDSASigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	d, err := priv.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	pub := k.PublicJWK()
	jwk := map[string]string{"kty": "EC", "crv": "P-256", "x": pub.X, "y": pub.Y, "d": b64(d)}
	in, _ := json.Marshal(map[string]any{
		"issuer": h.as.Issuer(), "audience": apiAud, "jwk": jwk,
		"subject_token": h.login("alice", "demo-app", readWrite, k),
	})
	out := nodetest.Run(t, filepath.Join(nodetest.Root(t), "sidecar", "lease", "testdata", "oauth4webapi_exchange.mjs"), in)
	var claims struct {
		Sub      string `json:"sub"`
		ClientID string `json:"client_id"`
		LeaseID  string `json:"lease_id"`
		Scope    string `json:"scope"`
		Cnf      struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if err := json.Unmarshal(out, &claims); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	if claims.Sub != "alice" || claims.LeaseID == "" || claims.Cnf.JKT != jkt(k) || claims.Scope != "orders:write" || claims.ClientID != "demo-app" {
		t.Fatalf("claims validated by oauth4webapi = %+v", claims)
	}
}
