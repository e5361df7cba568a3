package dpop_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyless-dev/keyless/sidecar/dpop"
	"github.com/keyless-dev/keyless/sidecar/internal/nodetest"
)

// TestInteropPanvaDPoP: proofs made by npm dpop (docs/security.md#i-5) for every algorithm
// are accepted when enabled, and tampered copies are rejected.
func TestInteropPanvaDPoP(t *testing.T) {
	nodetest.Require(t, "dpop", "jose")
	out := nodetest.Run(t, "testdata/interop.mjs", nil, "make")
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	seen := map[string]bool{}
	for sc.Scan() {
		var v struct{ Alg, JKT, Proof, HTU, HTM, Nonce, Token string }
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		seen[v.Alg] = true
		t.Run(v.Alg, func(t *testing.T) {
			req := dpop.Request{Method: v.HTM, URL: v.HTU, AccessToken: v.Token, JKT: v.JKT}
			opts := dpop.VerifyOptions{Algs: dpop.SupportedAlgs, Nonce: exactNonce(v.Nonce)}
			p, err := dpop.Verify(context.Background(), v.Proof, req, opts)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.JKT != v.JKT || p.Alg != v.Alg {
				t.Errorf("jkt %s alg %s, want %s %s", p.JKT, p.Alg, v.JKT, v.Alg)
			}
			// Default algs: RSA is opt-in.
			_, err = dpop.Verify(context.Background(), v.Proof, req, dpop.VerifyOptions{Nonce: exactNonce(v.Nonce)})
			if rsa := strings.HasPrefix(v.Alg, "PS") || strings.HasPrefix(v.Alg, "RS"); rsa != (err != nil) {
				t.Errorf("default algs: err = %v", err)
			}
			// Tampered copies.
			parts := strings.Split(v.Proof, ".")
			claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
			for name, bad := range map[string]string{
				"claims changed": parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(claims, []byte(`"GET"`), []byte(`"PUT"`), 1)) + "." + parts[2],
				"signature cut":  parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4],
				"other method":   v.Proof,
			} {
				r := req
				if name == "other method" {
					r.Method = "POST"
				}
				if _, err := dpop.Verify(context.Background(), bad, r, opts); err == nil {
					t.Errorf("%s: accepted", name)
				}
			}
			// Another token: ath mismatch.
			r := req
			r.AccessToken = "other"
			if _, err := dpop.Verify(context.Background(), v.Proof, r, opts); err == nil {
				t.Error("other token accepted")
			}
		})
	}
	for _, alg := range []string{"ES256", "PS256", "RS256", "Ed25519"} {
		if !seen[alg] {
			t.Errorf("npm dpop made no %s proof", alg)
		}
	}
}

type exactNonce string

func (n exactNonce) CheckNonce(s string) error {
	if s != string(n) {
		return dpop.ErrUseNonce
	}
	return nil
}

// TestInteropJoseVerifiesGoProofs (docs/security.md#i-8): proofs made here verify with npm
// jose's jwtVerify(EmbeddedJWK), and jose computes the same thumbprint.
func TestInteropJoseVerifiesGoProofs(t *testing.T) {
	nodetest.Require(t, "dpop", "jose")
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	es, _ := dpop.NewECDSASigner(ek)
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	signers := map[string]dpop.Signer{
		"ES256":       es,
		"Ed25519":     dpop.NewEd25519Signer(edk, false),
		"EdDSA":       dpop.NewEd25519Signer(edk, true),
		"ES256 again": es,
	}
	var in bytes.Buffer
	want := map[string]string{}
	for name, s := range signers {
		htu := "https://api.example.test/v1/orders"
		p, err := dpop.NewProof(s, "POST", htu+"?x=1", dpop.ProofOptions{AccessToken: "tok", Nonce: "n"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]string{"name": name, "proof": p, "htu": htu, "htm": "POST"})
		in.Write(append(b, '\n'))
		want[name] = s.PublicJWK().Thumbprint()
	}
	// And one tampered proof that jose must refuse.
	bad, _ := dpop.NewProof(es, "POST", "https://api.example.test/v1/orders", dpop.ProofOptions{})
	bad = bad[:len(bad)-3] + "AAA"
	b, _ := json.Marshal(map[string]string{"name": "tampered", "proof": bad, "htu": "https://api.example.test/v1/orders", "htm": "POST"})
	in.Write(append(b, '\n'))

	out := nodetest.Run(t, "testdata/interop.mjs", in.Bytes(), "verify")
	got := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r struct {
			Name, JKT, Error string
			OK               bool
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		got[r.Name] = true
		if r.Name == "tampered" {
			if r.OK {
				t.Error("jose accepted a tampered proof")
			}
			continue
		}
		if !r.OK {
			t.Errorf("%s: jose refused: %s", r.Name, r.Error)
		} else if r.JKT != want[r.Name] {
			t.Errorf("%s: jose jkt %s, Go %s", r.Name, r.JKT, want[r.Name])
		}
	}
	if len(got) != len(signers)+1 {
		t.Errorf("jose answered %d of %d proofs", len(got), len(signers)+1)
	}
}
