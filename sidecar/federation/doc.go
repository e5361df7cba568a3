// Package federation validates JWTs from external identity providers (ID
// tokens and JWT access tokens from Keycloak, Okta, Auth0, Entra ID,
// Google, Dex, Hydra, oidc-provider, ...) and maps their claims to a
// keyless identity: issuer name, subject, client, policy groups.
//
// The vending service uses it for subject tokens (RFC 8693 token exchange
// and POST /v1/lease); the device page's upstream sign-in uses it for the
// ID token of an authorization-code flow (with [Expect.Nonce]).
//
// # Use
//
//	v, err := federation.New(cfg, federation.Options{})   // cfg: one vending.issuers entry
//	id, err := v.Validate(ctx, raw, federation.Expect{Type: federation.IDToken, ClientID: "where2eat"})
//	// id.Issuer is cfg.Name, id.Subject the subject_claim's value, id.Groups the group_map's result
//
// # Errors
//
// Every refusal is an [*Error] naming the [Check] that failed, with a
// description safe to show a client (it quotes configuration, never token
// bytes). errors.Is(err, [ErrInvalid]) means the token will never pass;
// errors.Is(err, [ErrUnavailable]) means the issuer could not be asked
// (JWKS or discovery unreachable, or an unknown kid inside the refresh
// rate limit) and a retry after [Error.RetryAfter] may pass. Callers
// answer the first with their subject-token refusal code and the second
// with 503 temporarily_unavailable and Retry-After; see
// docs/identity-providers.md.
//
// # Keys
//
// [Remote] reads the issuer's metadata (OpenID Connect Discovery, else
// RFC 8414 with its path insertion), re-reads it periodically, and keeps
// its JWKS (RSA of 2048 bits or more, EC P-256/384/521, OKP Ed25519). An
// unknown kid triggers one refetch, rate-limited; concurrent refetches are
// collapsed into one with a timeout, and keys already known never wait for
// a fetch.
package federation
