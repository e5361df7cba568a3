package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"math/big"
)

// privateMembers are JWK members that only private keys have (RFC 7518
// section 6.2.2, 6.3.2, 6.4; RFC 8037 section 2). A proof carrying any of
// them is rejected: its key has been exposed, and RFC 9449 section 4.3 check
// 7 requires a public key.
var privateMembers = [...]string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// curveSize is the coordinate length in bytes for each EC curve we accept.
var curveSize = map[string]int{"P-256": 32, "P-384": 48}

var b64 = base64.RawURLEncoding.Strict()

// parseJWK validates a jwk header member and returns the key and its Go
// public key. Coordinates must have exactly the curve's length (a padded or
// shortened coordinate would change the thumbprint of the same key), EC
// points must lie on the curve, RSA moduli must be at least 2048 bits with no
// leading zero octet.
func parseJWK(v any) (*JWK, crypto.PublicKey, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, nil, errors.New("jwk is not an object")
	}
	for _, name := range privateMembers {
		if _, has := m[name]; has {
			return nil, nil, errors.New("jwk contains private key material")
		}
	}
	str := func(name string) (string, bool) {
		s, ok := m[name].(string)
		return s, ok && s != ""
	}
	kty, ok := str("kty")
	if !ok {
		return nil, nil, errors.New("jwk has no kty")
	}
	k := &JWK{Kty: kty}
	switch kty {
	case "EC":
		crv, ok1 := str("crv")
		x, ok2 := str("x")
		y, ok3 := str("y")
		if !ok1 || !ok2 || !ok3 {
			return nil, nil, errors.New("EC jwk needs crv, x and y")
		}
		size, known := curveSize[crv]
		if !known {
			return nil, nil, errors.New("unsupported EC curve")
		}
		xb, err1 := b64.DecodeString(x)
		yb, err2 := b64.DecodeString(y)
		if err1 != nil || err2 != nil || len(xb) != size || len(yb) != size {
			return nil, nil, errors.New("EC coordinates are not canonical")
		}
		curve := elliptic.P256()
		if crv == "P-384" {
			curve = elliptic.P384()
		}
		pt := make([]byte, 0, 1+2*size)
		pt = append(append(append(pt, 4), xb...), yb...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, pt)
		if err != nil {
			return nil, nil, errors.New("EC point is not on the curve")
		}
		k.Crv, k.X, k.Y = crv, x, y
		return k, pub, nil
	case "OKP":
		crv, ok1 := str("crv")
		x, ok2 := str("x")
		if !ok1 || !ok2 {
			return nil, nil, errors.New("OKP jwk needs crv and x")
		}
		if crv != "Ed25519" {
			return nil, nil, errors.New("unsupported OKP curve")
		}
		xb, err := b64.DecodeString(x)
		if err != nil || len(xb) != ed25519.PublicKeySize {
			return nil, nil, errors.New("Ed25519 key is not canonical")
		}
		k.Crv, k.X = crv, x
		return k, ed25519.PublicKey(xb), nil
	case "RSA":
		n, ok1 := str("n")
		e, ok2 := str("e")
		if !ok1 || !ok2 {
			return nil, nil, errors.New("RSA jwk needs n and e")
		}
		nb, err1 := b64.DecodeString(n)
		eb, err2 := b64.DecodeString(e)
		if err1 != nil || err2 != nil || len(nb) == 0 || len(eb) == 0 || nb[0] == 0 || eb[0] == 0 {
			return nil, nil, errors.New("RSA key is not canonical")
		}
		if len(nb) < 256 || len(nb) > 1024 {
			return nil, nil, errors.New("RSA modulus must be 2048 to 8192 bits")
		}
		if len(eb) > 4 {
			return nil, nil, errors.New("RSA exponent too large")
		}
		var ev int
		for _, c := range eb {
			ev = ev<<8 | int(c)
		}
		if ev < 3 || ev%2 == 0 {
			return nil, nil, errors.New("RSA exponent invalid")
		}
		k.N, k.E = n, e
		return k, &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: ev}, nil
	}
	return nil, nil, errors.New("unsupported kty")
}

// PublicJWK returns the JWK of a Go public key: *ecdsa.PublicKey (P-256,
// P-384), ed25519.PublicKey or *rsa.PublicKey.
func PublicJWK(pub crypto.PublicKey) (*JWK, error) {
	enc := base64.RawURLEncoding.EncodeToString
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		b, err := p.Bytes()
		if err != nil {
			return nil, err
		}
		size := (len(b) - 1) / 2
		crv := p.Curve.Params().Name
		if _, ok := curveSize[crv]; !ok {
			return nil, errors.New("dpop: unsupported curve")
		}
		return &JWK{Kty: "EC", Crv: crv, X: enc(b[1 : 1+size]), Y: enc(b[1+size:])}, nil
	case ed25519.PublicKey:
		return &JWK{Kty: "OKP", Crv: "Ed25519", X: enc(p)}, nil
	case *rsa.PublicKey:
		return &JWK{Kty: "RSA", N: enc(p.N.Bytes()), E: enc(big.NewInt(int64(p.E)).Bytes())}, nil
	}
	return nil, errors.New("dpop: unsupported public key type")
}
