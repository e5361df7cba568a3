package proof

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// JWK is a public JSON Web Key (RFC 7517) of one of the types a DPoP proof may
// carry. Members are kept base64url-encoded exactly as they appear in the
// canonical form, so [JWK.Thumbprint] needs no re-encoding.
type JWK struct {
	Kty string // "EC", "OKP" or "RSA"
	Crv string // "P-256", "P-384" or "Ed25519"; empty for RSA
	X   string // EC and OKP
	Y   string // EC
	N   string // RSA modulus
	E   string // RSA exponent
}

// Thumbprint is the RFC 7638 JWK SHA-256 thumbprint, base64url without
// padding: the value of cnf.jkt (RFC 9449 section 6.1) and of dpop_jkt.
//
// https://www.rfc-editor.org/rfc/rfc7638#section-3.2: only the required
// members, in lexicographic order, no whitespace. The member values are
// base64url strings, which need no JSON escaping.
func (k *JWK) Thumbprint() string {
	var buf []byte
	switch k.Kty {
	case "EC":
		buf = append(buf, `{"crv":"`...)
		buf = append(buf, k.Crv...)
		buf = append(buf, `","kty":"EC","x":"`...)
		buf = append(buf, k.X...)
		buf = append(buf, `","y":"`...)
		buf = append(buf, k.Y...)
		buf = append(buf, `"}`...)
	case "OKP":
		buf = append(buf, `{"crv":"`...)
		buf = append(buf, k.Crv...)
		buf = append(buf, `","kty":"OKP","x":"`...)
		buf = append(buf, k.X...)
		buf = append(buf, `"}`...)
	case "RSA":
		buf = append(buf, `{"e":"`...)
		buf = append(buf, k.E...)
		buf = append(buf, `","kty":"RSA","n":"`...)
		buf = append(buf, k.N...)
		buf = append(buf, `"}`...)
	default:
		return ""
	}
	sum := sha256.Sum256(buf)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// MarshalJSON writes the public key with only its defining members, in the
// order RFC 7638 uses, as DPoP proof headers carry it.
func (k *JWK) MarshalJSON() ([]byte, error) {
	var buf []byte
	switch k.Kty {
	case "EC":
		buf = append(buf, `{"kty":"EC","crv":"`...)
		buf = append(buf, k.Crv...)
		buf = append(buf, `","x":"`...)
		buf = append(buf, k.X...)
		buf = append(buf, `","y":"`...)
		buf = append(buf, k.Y...)
		buf = append(buf, `"}`...)
	case "OKP":
		buf = append(buf, `{"kty":"OKP","crv":"`...)
		buf = append(buf, k.Crv...)
		buf = append(buf, `","x":"`...)
		buf = append(buf, k.X...)
		buf = append(buf, `"}`...)
	case "RSA":
		buf = append(buf, `{"kty":"RSA","n":"`...)
		buf = append(buf, k.N...)
		buf = append(buf, `","e":"`...)
		buf = append(buf, k.E...)
		buf = append(buf, `"}`...)
	default:
		return nil, errors.New("dpop: unsupported kty")
	}
	return buf, nil
}
