package dpop

import (
	"context"
	"crypto/ed25519"
	"testing"
)

// FuzzVerify mutates the header and claims of a proof and signs the result
// with a fixed key, so the fuzzer reaches every check after the signature.
// Whatever Verify accepts must satisfy the request.
func FuzzVerify(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, 32))
	s := NewEd25519Signer(seed, false)
	f.Add([]byte(enc(f, goodHeader(s))), []byte(enc(f, goodClaims())))
	f.Add([]byte(`{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"`+s.PublicJWK().X+`"}}`),
		[]byte(`{"jti":"x","htm":"GET","htu":"HTTPS://api.example.test:443/v1/./orders?q","iat":1800000000.5,"ath":"`+AccessTokenHash(testToken)+`","nonce":"n"}`))
	f.Add([]byte(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, hdr, claims []byte) {
		p := forge(t, s, hdr, claims)
		req := Request{Method: "GET", URL: testURL, AccessToken: testToken, JKT: s.PublicJWK().Thumbprint()}
		got, err := Verify(context.Background(), p, req, VerifyOptions{Now: fixedNow, Replay: &recordingReplay{}})
		if err != nil {
			if _, ok := checkOf(err); !ok {
				t.Fatalf("error is not a *CheckError: %v", err)
			}
			return
		}
		n, _ := NormalizeHTU(got.HTU)
		if got.HTM != "GET" || n != testURL || got.JKT != req.JKT || got.ATH != AccessTokenHash(testToken) {
			t.Fatalf("accepted a proof that does not match: %+v", got)
		}
		if got.IAT.Before(testNow.Add(-DefaultMaxAge)) || got.IAT.After(testNow.Add(DefaultFutureSkew)) {
			t.Fatalf("accepted iat %v", got.IAT)
		}
	})
}

// FuzzVerifyRaw feeds arbitrary DPoP header values: nothing may panic, and
// the only proof that may pass is the one signed seed, unaltered in meaning.
func FuzzVerifyRaw(f *testing.F) {
	// A fixed key: fuzz workers are separate processes and must agree.
	s := NewEd25519Signer(ed25519.NewKeyFromSeed(make([]byte, 32)), false)
	f.Add(forge(f, s, goodHeader(s), goodClaims()))
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.AA")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, proof string) {
		p, err := Verify(context.Background(), proof, Request{Method: "GET", URL: testURL}, VerifyOptions{Now: fixedNow})
		if err == nil && (p.JKT != s.PublicJWK().Thumbprint() || p.JTI != "jti-1") {
			t.Fatalf("accepted %q", proof)
		}
	})
}
