package oidclogin

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// Random returns 256 random bits, base64url: a state, nonce or PKCE code
// verifier (43 characters, within RFC 7636 section 4.1's 43..128).
func Random() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Challenge is the S256 code challenge of a verifier.
//
// https://www.rfc-editor.org/rfc/rfc7636#section-4.2
func Challenge(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}
