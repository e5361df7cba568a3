package dpop

import (
	"errors"
	"fmt"
)

// Sentinel errors. A [*CheckError] matches exactly one of ErrInvalidProof,
// ErrUseNonce and ErrInvalidToken through errors.Is, according to its code.
var (
	// ErrInvalidProof: the proof is malformed, badly signed, or does not match
	// the request (RFC 9449 section 7.1, error code invalid_dpop_proof).
	ErrInvalidProof = errors.New("dpop: invalid proof")
	// ErrUseNonce: the server requires a nonce the proof lacks, or the nonce
	// is stale (RFC 9449 section 8 and 9, error code use_dpop_nonce).
	ErrUseNonce = errors.New("dpop: use nonce")
	// ErrInvalidToken: the proof key is not the key the access token is bound
	// to (cnf.jkt), see docs/security.md#d4.
	ErrInvalidToken = errors.New("dpop: key does not match token binding")
	// ErrReplay is returned by a [ReplayCache] when the (jkt, jti) pair was
	// already used inside its window.
	ErrReplay = errors.New("dpop: proof replayed")
)

// Check names one verification step of RFC 9449 section 4.3.
type Check int

// The checks, in the order [Verify] runs them.
const (
	CheckHeader Check = iota // exactly one DPoP header field holding one value
	CheckSize                // size limits
	CheckSyntax              // one compact JWS, strict base64url and JSON
	CheckTyp                 // typ header
	CheckAlg                 // alg allow-list
	CheckCrit                // crit and other unsupported header members
	CheckJWK                 // jwk: public, well formed, matching alg
	CheckSig                 // signature
	CheckJTI                 // jti present, bounded; also replay
	CheckHTM                 // htm equals the request method
	CheckHTU                 // htu equals the request URL after normalization
	CheckIAT                 // iat inside the window
	CheckNonce               // server nonce
	CheckATH                 // ath equals the access token hash
	CheckJKT                 // key thumbprint equals the token's cnf.jkt
)

var checkNames = [...]string{
	CheckHeader: "header",
	CheckSize:   "size",
	CheckSyntax: "syntax",
	CheckTyp:    "typ",
	CheckAlg:    "alg",
	CheckCrit:   "crit",
	CheckJWK:    "jwk",
	CheckSig:    "sig",
	CheckJTI:    "jti",
	CheckHTM:    "htm",
	CheckHTU:    "htu",
	CheckIAT:    "iat",
	CheckNonce:  "nonce",
	CheckATH:    "ath",
	CheckJKT:    "jkt",
}

func (c Check) String() string {
	if c >= 0 && int(c) < len(checkNames) {
		return checkNames[c]
	}
	return fmt.Sprintf("check(%d)", int(c))
}

// CheckError is the one error type [Verify] returns for a rejected proof.
// Err says why in words safe to log and to put in error_description: it never
// quotes the proof or any attacker-supplied value.
type CheckError struct {
	Check Check
	Err   error
}

func (e *CheckError) Error() string { return "dpop: " + e.Check.String() + ": " + e.Err.Error() }

func (e *CheckError) Unwrap() error { return e.Err }

// Is makes a CheckError match the sentinel of its code.
func (e *CheckError) Is(target error) bool {
	switch target {
	case ErrInvalidProof:
		return e.Code() == CodeInvalidProof
	case ErrUseNonce:
		return e.Code() == CodeUseNonce
	case ErrInvalidToken:
		return e.Code() == CodeInvalidToken
	}
	return false
}

// Error codes registered by RFC 9449 section 12.2 and RFC 6750 section 3.1.
const (
	CodeInvalidProof = "invalid_dpop_proof"
	CodeUseNonce     = "use_dpop_nonce"
	CodeInvalidToken = "invalid_token"
)

// Code is the RFC error code for the WWW-Authenticate header or the token
// endpoint's error member.
func (e *CheckError) Code() string {
	switch e.Check {
	case CheckNonce:
		return CodeUseNonce
	case CheckJKT:
		return CodeInvalidToken
	}
	return CodeInvalidProof
}

// Description is a short, fixed, header-safe text for error_description
// (RFC 6750 section 3 allows only %x20-21 / %x23-5B / %x5D-7E).
func (e *CheckError) Description() string {
	return sanitizeDescription(e.Check.String() + ": " + e.Err.Error())
}

func sanitizeDescription(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0x20 || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) {
			b = append(b, c)
		}
	}
	return string(b)
}

func fail(c Check, msg string) error { return &CheckError{Check: c, Err: errors.New(msg)} }
