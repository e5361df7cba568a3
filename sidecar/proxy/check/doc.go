// Package check is the sidecar's check chain as pure rules: no net/http,
// no httputil, no metrics, no I/O. The process proxy ([proxy.Proxy]) and
// the edge Worker (sidecar/edge, js/wasm) both run these functions, in the
// same order, so there is one copy of every rule.
//
// # Rules
//
//   - configuration: [Config] (the `proxy:` YAML section), [Config.WithDefaults],
//     [Config.Validate], [ParseConfig];
//   - request target: [Method], [Path] ([RawPath], [CanonicalPath]);
//   - routes: [CompilePattern], [Lookup], [Route404];
//   - credentials: [Scheme], [TokenSyntax], [TokenVerifyError], [Lease],
//     [TokenTime], [Revocations], [Revoked], [ProofError] (the proof itself
//     is the dpop package's);
//   - authorization: [Scopes];
//   - forwarding: [RequestStripList], [ResponseStripList] ([HeaderMatcher]),
//     [UnescapePath];
//   - refusals: [Error], [Status], [Challenged], [Challenge], [Body].
//
// Every refusal is an [*Error] whose Code decides the status ([Status]).
package check
