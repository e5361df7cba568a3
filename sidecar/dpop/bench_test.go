package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"testing"
	"time"
)

// BenchmarkVerifyES256 is full proof verification (parse, every check,
// signature, thumbprint) without a replay store; compare it with
// BenchmarkBareECDSAP256, the signature alone. Target: within 1.3x.
func BenchmarkVerifyES256(b *testing.B) {
	s := newES256(b)
	p, err := NewProof(s, "GET", testURL, ProofOptions{AccessToken: testToken, Now: testNow})
	if err != nil {
		b.Fatal(err)
	}
	req := Request{Method: "GET", URL: testURL, AccessToken: testToken, JKT: s.PublicJWK().Thumbprint()}
	opts := VerifyOptions{Now: fixedNow}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(ctx, p, req, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareECDSAP256 is one P-256 verification of a proof-sized input,
// the floor Verify cannot go below.
func BenchmarkBareECDSAP256(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	input := make([]byte, 400)
	d := sha256.Sum256(input)
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		b.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256(input)
		if !ecdsa.Verify(&k.PublicKey, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			b.Fatal("verify")
		}
	}
}

func BenchmarkVerifyEd25519(b *testing.B) {
	s := newEd25519(b, false)
	p, _ := NewProof(s, "GET", testURL, ProofOptions{AccessToken: testToken, Now: testNow})
	req := Request{Method: "GET", URL: testURL, AccessToken: testToken}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(context.Background(), p, req, VerifyOptions{Now: fixedNow}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewProofES256(b *testing.B) {
	s := newES256(b)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewProof(s, "GET", testURL, ProofOptions{AccessToken: testToken, Now: now}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkThumbprint(b *testing.B) {
	k := newES256(b).PublicJWK()
	b.ReportAllocs()
	for b.Loop() {
		_ = k.Thumbprint()
	}
}

// BenchmarkVerifyES256Cached is BenchmarkVerifyES256 with a header cache,
// as the proxy verifies: every proof of one key has the same header, so
// what is left per proof is the payload, the claims and the signature.
func BenchmarkVerifyES256Cached(b *testing.B) {
	s := newES256(b)
	p, err := NewProof(s, "GET", testURL, ProofOptions{AccessToken: testToken, Now: testNow})
	if err != nil {
		b.Fatal(err)
	}
	req := Request{Method: "GET", URL: testURL, AccessToken: testToken, JKT: s.PublicJWK().Thumbprint()}
	opts := VerifyOptions{Now: fixedNow, Headers: &HeaderCache{}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(ctx, p, req, opts); err != nil {
			b.Fatal(err)
		}
	}
}
