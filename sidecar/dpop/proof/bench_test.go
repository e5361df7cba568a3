package proof

import "testing"

// nopSigner isolates the cost of building a proof from the signature: in
// the browser the signature is WebCrypto's, and everything else is this.
type nopSigner struct{ jwk *JWK }

func (s nopSigner) Alg() string                    { return "ES256" }
func (s nopSigner) PublicJWK() *JWK                { return s.jwk }
func (s nopSigner) Sign(in []byte) ([]byte, error) { return make([]byte, 64), nil }

// BenchmarkNewUnsigned is proof creation without the signature: run it
// under GOOS=js (go test with $(go env GOROOT)/lib/wasm on PATH) to see the
// browser build's own share of a proof's cost.
func BenchmarkNewUnsigned(b *testing.B) {
	s := nopSigner{jwk: &JWK{Kty: "EC", Crv: "P-256", X: "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs", Y: "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(s, "GET", "https://api.example.test/v1/things?x=1", Options{AccessToken: "token", Nonce: "n"}); err != nil {
			b.Fatal(err)
		}
	}
}
