package dpop

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
)

// Algorithm names (RFC 7518 section 3.1; RFC 8037 section 3.1 for EdDSA;
// RFC 9864 for the fully specified Ed25519).
const (
	ES256   = "ES256"
	ES384   = "ES384"
	EdDSA   = "EdDSA"
	Ed25519 = "Ed25519"
	RS256   = "RS256"
	PS256   = "PS256"
)

// DefaultAlgs are the proof algorithms accepted when [VerifyOptions.Algs] is
// empty: ES256 and Ed25519 under both of its names (docs/security.md#d8).
// RSA algorithms are opt-in.
var DefaultAlgs = []string{ES256, Ed25519, EdDSA}

// SupportedAlgs is every algorithm this package can verify. HMAC algorithms
// and "none" are never among them: a DPoP proof must be signed with the
// private half of the public key it carries.
var SupportedAlgs = []string{ES256, ES384, Ed25519, EdDSA, RS256, PS256}

func supported(alg string) bool {
	for _, a := range SupportedAlgs {
		if a == alg {
			return true
		}
	}
	return false
}

// keyFits reports whether key may be used with alg: RFC 8725 section 3.1,
// each key is used with exactly one algorithm.
func keyFits(alg string, k *JWK) bool {
	switch alg {
	case ES256:
		return k.Kty == "EC" && k.Crv == "P-256"
	case ES384:
		return k.Kty == "EC" && k.Crv == "P-384"
	case EdDSA, Ed25519:
		return k.Kty == "OKP" && k.Crv == "Ed25519"
	case RS256, PS256:
		return k.Kty == "RSA"
	}
	return false
}

var errBadSignature = errors.New("signature does not verify")

// verifySignature checks a JWS signature with Go's crypto. ECDSA signatures
// must be the raw R||S of RFC 7518 section 3.4, exactly twice the coordinate
// size; DER, short or long encodings are rejected, and r or s of zero is
// refused (CVE-2022-21449).
func verifySignature(alg string, pub crypto.PublicKey, input, sig []byte) error {
	switch alg {
	case ES256, ES384:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return errBadSignature
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return errBadSignature
		}
		var digest []byte
		if alg == ES256 {
			h := sha256.Sum256(input)
			digest = h[:]
		} else {
			h := sha512.Sum384(input)
			digest = h[:]
		}
		var buf [derSigMax]byte
		der, ok := rawToDER(buf[:0], sig[:size], sig[size:])
		if !ok || !ecdsa.VerifyASN1(k, digest, der) {
			return errBadSignature
		}
		return nil
	case EdDSA, Ed25519:
		k, ok := pub.(ed25519.PublicKey)
		if !ok || len(sig) != ed25519.SignatureSize || !ed25519.Verify(k, input, sig) {
			return errBadSignature
		}
		return nil
	case RS256, PS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return errBadSignature
		}
		h := sha256.Sum256(input)
		var err error
		if alg == RS256 {
			err = rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig)
		} else {
			err = rsa.VerifyPSS(k, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		if err != nil {
			return errBadSignature
		}
		return nil
	}
	return errBadSignature
}

// derSigMax bounds the DER form of an ES256 or ES384 signature: a SEQUENCE
// header and two INTEGERs of at most 48 bytes plus a sign byte.
const derSigMax = 2 + 2*(2+48+1)

// rawToDER appends to b the DER SEQUENCE of two INTEGERs (RFC 3279
// section 2.2.3) that ecdsa.VerifyASN1 reads, for the raw big-endian
// halves r and s of a JWS signature: leading zero bytes dropped, a zero
// byte added before a high bit (X.690 section 8.3). It is what
// ecdsa.Verify builds from big.Ints, without them. ok is false when r or s
// is zero, never a valid signature (CVE-2022-21449), or too long for the
// short-form lengths used here.
func rawToDER(b, r, s []byte) (der []byte, ok bool) {
	r, s = bytes.TrimLeft(r, "\x00"), bytes.TrimLeft(s, "\x00")
	if len(r) == 0 || len(s) == 0 || len(r) > 48 || len(s) > 48 {
		return nil, false
	}
	n := derIntLen(r) + derIntLen(s)
	b = append(b, 0x30, byte(n))
	b = appendDERInt(b, r)
	return appendDERInt(b, s), true
}

// derIntLen is the length of appendDERInt's encoding of v.
func derIntLen(v []byte) int {
	if v[0]&0x80 != 0 {
		return 3 + len(v)
	}
	return 2 + len(v)
}

// appendDERInt appends the DER INTEGER of the positive big-endian v, which
// has no leading zero byte.
func appendDERInt(b, v []byte) []byte {
	if v[0]&0x80 != 0 {
		b = append(b, 0x02, byte(len(v)+1), 0)
	} else {
		b = append(b, 0x02, byte(len(v)))
	}
	return append(b, v...)
}
