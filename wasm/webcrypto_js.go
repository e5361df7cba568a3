package main

import (
	"errors"
	"syscall/js"

	"github.com/keyless-dev/keyless/sidecar/dpop/proof"
)

// webCryptoSigner signs proofs with a non-extractable WebCrypto ECDSA P-256
// key: the private key never enters WebAssembly memory, and page script
// cannot read it as bytes. One sign call and one copy cross the JS boundary
// per proof.
type webCryptoSigner struct {
	priv js.Value // CryptoKey, extractable: false
	jwk  *proof.JWK
}

var _ proof.Signer = (*webCryptoSigner)(nil)

func (s *webCryptoSigner) Alg() string           { return "ES256" }
func (s *webCryptoSigner) PublicJWK() *proof.JWK { return s.jwk }

func (s *webCryptoSigner) Sign(input []byte) ([]byte, error) {
	data := js.Global().Get("Uint8Array").New(len(input))
	js.CopyBytesToJS(data, input)
	alg := map[string]any{"name": "ECDSA", "hash": "SHA-256"}
	sig, err := await(subtle().Call("sign", alg, s.priv, data))
	if err != nil {
		return nil, err
	}
	u8 := js.Global().Get("Uint8Array").New(sig)
	// WebCrypto returns ECDSA signatures as raw r||s (IEEE P1363), which is
	// exactly the JWS form (RFC 7518 section 3.4).
	out := make([]byte, u8.Get("length").Int())
	js.CopyBytesToGo(out, u8)
	if len(out) != 64 {
		return nil, errors.New("keyless: unexpected ECDSA signature length")
	}
	return out, nil
}

func subtle() js.Value { return js.Global().Get("crypto").Get("subtle") }

// generateKeyPair makes a P-256 key pair whose private key is not
// extractable.
func generateKeyPair() (js.Value, error) {
	alg := map[string]any{"name": "ECDSA", "namedCurve": "P-256"}
	usages := js.Global().Get("Array").New("sign", "verify")
	return await(subtle().Call("generateKey", alg, false, usages))
}

// signerFromKeyPair exports the public half (public keys are always
// exportable) to build the proof header's jwk.
func signerFromKeyPair(kp js.Value) (*webCryptoSigner, error) {
	pub, err := await(subtle().Call("exportKey", "jwk", kp.Get("publicKey")))
	if err != nil {
		return nil, err
	}
	str := func(k string) string {
		if v := pub.Get(k); v.Type() == js.TypeString {
			return v.String()
		}
		return ""
	}
	jwk := &proof.JWK{Kty: str("kty"), Crv: str("crv"), X: str("x"), Y: str("y")}
	if jwk.Kty != "EC" || jwk.Crv != "P-256" || jwk.X == "" || jwk.Y == "" {
		return nil, errors.New("keyless: unexpected public key")
	}
	return &webCryptoSigner{priv: kp.Get("privateKey"), jwk: jwk}, nil
}
