// Package oauth is the OAuth 2.0 protocol surface that keyless's token
// endpoints share: the error type and codes, the JSON rendering every
// token-endpoint-like response needs, strict form parsing, and the
// token request/response types with the grant-registration seam.
//
// It holds no state and does no I/O beyond the one request it is given,
// so both the authorization server (sidecar/authserver) and the vending
// service (sidecar/lease) build on it without either importing the other:
// the vending service plugs its grants into the token endpoint through
// [GrantRegistry].
//
// # Use
//
// A handler refuses with an [*Error] (build one with [NewError]), maps any
// error to what the client sees with [AsError], and writes it with
// [WriteError]; a success goes out through [WriteJSON]. Token-endpoint
// grant handlers implement [GrantHandler] (or wrap a function in
// [GrantFunc]) and register with a [GrantRegistry].
package oauth
