// Package proof creates DPoP proofs (RFC 9449 section 4.2) and holds the
// parts of DPoP that creating them needs: the public [JWK] with its RFC 7638
// thumbprint, the [Signer] seam, and htu normalization.
//
// It is the light half of the DPoP core: it imports no asymmetric crypto
// package, so the browser client, which signs through WebCrypto, links
// neither Go's ECDSA nor RSA (about 0.3 MB gzip). Verification, and signers
// over Go keys, are in the parent package dpop, which re-exports these
// names.
package proof

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/keyless-dev/keyless/internal/flatjson"
)

// Signer produces JWS signatures for proofs. It is the one seam between the
// proof format and the key: Go keys, a browser's non-extractable WebCrypto
// key and test keys all sit behind it.
type Signer interface {
	// Alg is the JWS algorithm, e.g. "ES256".
	Alg() string
	// PublicJWK is the public key placed in the proof header.
	PublicJWK() *JWK
	// Sign returns the JWS signature of signingInput: raw R||S for ECDSA
	// (RFC 7518 section 3.4), as WebCrypto's ECDSA sign already returns.
	Sign(signingInput []byte) ([]byte, error)
}

// Options are the optional inputs of [New].
type Options struct {
	// AccessToken, when set, is hashed into the ath claim (RFC 9449 section
	// 4.2); set it on every request to a resource server.
	AccessToken string
	// Nonce is the server-provided nonce, if any.
	Nonce string
	// Now is the proof's iat; zero means time.Now().
	Now time.Time
	// Rand supplies the jti's 128 random bits; nil means crypto/rand.
	Rand io.Reader
}

// New creates a DPoP proof JWT for one request (RFC 9449 section 4.2).
// htu is the request URL; its query and fragment are removed. Each call makes
// a fresh jti, so a retried request gets a new proof (RFC 9449 section 11.1).
//
// It is [SigningInput], s.Sign and [Finish]: the one way a proof is made.
// A caller that must sign asynchronously (the browser, whose WebCrypto
// sign returns a Promise) calls the two halves itself around its own sign.
func New(s Signer, method, htu string, opts Options) (string, error) {
	input, err := SigningInput(s, method, htu, opts)
	if err != nil {
		return "", err
	}
	sig, err := s.Sign(input)
	if err != nil {
		return "", err
	}
	return Finish(input, sig), nil
}

// SigningInput returns the JWS signing input of a new proof,
// BASE64URL(header) "." BASE64URL(claims) (RFC 7515 section 5.1), with s's
// alg and public key in the header: the bytes s must sign. The claims are
// as [New] describes; nothing is signed yet.
func SigningInput(s Signer, method, htu string, opts Options) ([]byte, error) {
	if method == "" {
		return nil, errors.New("proof: empty method")
	}
	if i := strings.IndexAny(htu, "?#"); i >= 0 {
		htu = htu[:i]
	}
	if _, err := NormalizeHTU(htu); err != nil {
		return nil, errors.New("proof: htu is not an absolute http(s) URL")
	}
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	var id [16]byte
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return nil, err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	// The header and claims, written directly rather than with
	// encoding/json, whose reflection would cost the browser build about
	// 0.2 MB gzip: member order and values as encoding/json wrote them.
	h := append([]byte(`{"typ":"dpop+jwt","alg":`), flatjson.AppendString(nil, s.Alg())...)
	jwk, err := s.PublicJWK().MarshalJSON()
	if err != nil {
		return nil, err
	}
	h = append(append(append(h, `,"jwk":`...), jwk...), '}')
	p := append([]byte(`{"jti":`), flatjson.AppendString(nil, base64.RawURLEncoding.EncodeToString(id[:]))...)
	p = flatjson.AppendString(append(p, `,"htm":`...), method)
	p = flatjson.AppendString(append(p, `,"htu":`...), htu)
	p = strconv.AppendInt(append(p, `,"iat":`...), now.Unix(), 10)
	if opts.AccessToken != "" {
		p = flatjson.AppendString(append(p, `,"ath":`...), AccessTokenHash(opts.AccessToken))
	}
	if opts.Nonce != "" {
		p = flatjson.AppendString(append(p, `,"nonce":`...), opts.Nonce)
	}
	p = append(p, '}')
	enc := base64.RawURLEncoding
	input := make([]byte, 0, enc.EncodedLen(len(h))+1+enc.EncodedLen(len(p))+1+enc.EncodedLen(132))
	input = enc.AppendEncode(input, h)
	input = append(input, '.')
	input = enc.AppendEncode(input, p)
	return input, nil
}

// Finish appends the signature to a signing input from [SigningInput]:
// the compact JWS (RFC 7515 section 7.1) that is the proof.
func Finish(input, sig []byte) string {
	enc := base64.RawURLEncoding
	out := make([]byte, 0, len(input)+1+enc.EncodedLen(len(sig)))
	out = append(out, input...)
	out = append(out, '.')
	return string(enc.AppendEncode(out, sig))
}

// AccessTokenHash is the ath value for a token: base64url(SHA-256(token)),
// RFC 9449 section 4.2.
func AccessTokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(h[:])
}
