package lease_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/lease"
	"github.com/keyless-dev/keyless/sidecar/policy"
	"github.com/keyless-dev/keyless/sidecar/store/memstore"
	"github.com/keyless-dev/keyless/sidecar/token"
)

// A browser holding a DPoP key and a login token from the issuer asks for
// a lease of orders:write for an hour; the policy clamps it to 5 minutes
// and expires_in says so.
func ExampleService() {
	const issuer, api = "https://auth.example.test", "https://api.example.test"
	ctx := context.Background()
	keys, _ := token.NewKeySet(time.Now())
	minter := &token.Minter{Keys: keys, Issuer: issuer}
	pol, err := policy.Parse("policy.yaml", []byte(`
apps:
  orders-app:
    scopes: {orders:read: read, orders:write: write}
    rules:
      - {name: ops, subjects: [alice], scopes: [orders:read, orders:write], write: true, max_ttl: 5m}
`))
	if err != nil {
		panic(err)
	}
	svc, err := lease.New(lease.Options{
		Policy:      func() *policy.Policy { return pol },
		Minter:      minter,
		Audience:    api,
		BaseURL:     issuer,
		Issuers:     []lease.Issuer{{Issuer: issuer, Verifier: &token.JWTVerifier{Keys: keys, Issuer: issuer, Audience: issuer}}},
		Revocations: &memstore.Revocations{},
		Replay:      &memstore.Replay{},
	})
	if err != nil {
		panic(err)
	}

	// The browser's key, and its login token from the device flow.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := dpop.NewECDSASigner(k)
	login, _, _ := minter.Issue(ctx, token.Spec{Subject: "alice", Audience: []string{issuer}, ClientID: "orders-app",
		JKT: signer.PublicJWK().Thumbprint(), Scope: []string{"orders:read", "orders:write"}})

	body, _ := json.Marshal(map[string]any{"subject_token": login, "client_id": "orders-app", "scope": "orders:write", "ttl": 3600})
	req := httptest.NewRequest(http.MethodPost, lease.PathLease, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	proof, _ := dpop.NewProof(signer, http.MethodPost, issuer+lease.PathLease, dpop.ProofOptions{})
	req.Header.Set("DPoP", proof)
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, req)

	var resp lease.Response
	json.Unmarshal(rec.Body.Bytes(), &resp)
	fmt.Println(rec.Code, resp.TokenType, resp.Scope, resp.ExpiresIn)
	// Output: 200 DPoP orders:write 300
}
