// Package dpop is keyless's one implementation of OAuth 2.0 Demonstrating
// Proof of Possession (RFC 9449): it creates proofs, verifies them, computes
// JWK thumbprints (RFC 7638) and normalizes the htu claim.
//
// The browser client, the sidecar, the authorization server and the edge
// Worker all import this package; none keeps a copy. It is pure: no network,
// no storage, no global clock and no syscall/js, so it builds for linux,
// js/wasm and wasip1 alike. Everything that has state (the jti replay cache,
// server nonces, the clock) is passed in through [VerifyOptions].
//
// # Creating proofs
//
// Use [NewProof] with a [Signer]. [NewECDSASigner] and [NewEd25519Signer]
// wrap Go keys; the browser wraps a non-extractable WebCrypto key behind the
// same interface. Creation lives in the sub-package proof, which imports no
// asymmetric crypto, so the browser build can use it without linking Go's
// ECDSA and RSA; this package re-exports its names.
//
// # Verifying proofs
//
// Use [SingleProof] on the request's DPoP header values, then [Verify]. Every
// rejection is a [*CheckError] naming the failed check; its Code method gives
// the RFC error code ("invalid_dpop_proof", "use_dpop_nonce" or
// "invalid_token") for the WWW-Authenticate header. Errors that are not a
// *CheckError come from the replay cache being unavailable and must be
// answered with 503: a proof is never accepted when replay could not be
// checked.
//
// JSON in proofs is parsed strictly (see docs/security.md#d11): exact-case
// member names, duplicate names rejected, bounded nesting.
package dpop
