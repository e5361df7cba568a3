package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
)

// NewECDSASigner returns an ES256 (P-256) or ES384 (P-384) signer.
func NewECDSASigner(k *ecdsa.PrivateKey) (Signer, error) {
	jwk, err := PublicJWK(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	alg := ES256
	if jwk.Crv == "P-384" {
		alg = ES384
	}
	return &ecdsaSigner{key: k, jwk: jwk, alg: alg}, nil
}

type ecdsaSigner struct {
	key *ecdsa.PrivateKey
	jwk *JWK
	alg string
}

func (s *ecdsaSigner) Alg() string     { return s.alg }
func (s *ecdsaSigner) PublicJWK() *JWK { return s.jwk }
func (s *ecdsaSigner) Sign(in []byte) ([]byte, error) {
	var digest []byte
	if s.alg == ES256 {
		h := sha256.Sum256(in)
		digest = h[:]
	} else {
		h := crypto.SHA384.New()
		h.Write(in)
		digest = h.Sum(nil)
	}
	r, ss, err := ecdsa.Sign(rand.Reader, s.key, digest)
	if err != nil {
		return nil, err
	}
	size := (s.key.Curve.Params().BitSize + 7) / 8
	sig := make([]byte, 2*size)
	r.FillBytes(sig[:size])
	ss.FillBytes(sig[size:])
	return sig, nil
}

// NewEd25519Signer returns a signer that writes alg as "Ed25519" (the fully
// specified name, as panva/dpop v2 does) or, with legacy set, "EdDSA".
func NewEd25519Signer(k ed25519.PrivateKey, legacy bool) Signer {
	alg := Ed25519
	if legacy {
		alg = EdDSA
	}
	jwk, _ := PublicJWK(k.Public())
	return &edSigner{key: k, jwk: jwk, alg: alg}
}

type edSigner struct {
	key ed25519.PrivateKey
	jwk *JWK
	alg string
}

func (s *edSigner) Alg() string                    { return s.alg }
func (s *edSigner) PublicJWK() *JWK                { return s.jwk }
func (s *edSigner) Sign(in []byte) ([]byte, error) { return ed25519.Sign(s.key, in), nil }
