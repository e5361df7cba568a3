// Third-party clients against the vending service (docs/security.md#i-5, #i-7):
// npm oauth4webapi runs discovery and the RFC 8693 token exchange with its
// own DPoP support, npm dpop signs the resource request's proof, and
// oauth4webapi's validateJwtAccessToken checks the lease the way an RFC
// 9068 resource server would (typ, iss, aud, exp, sub, iat, jti,
// client_id, cnf.jkt against the proof, ath, htu).
//
// Input on stdin (from sidecar/lease/interop_test.go): {"issuer",
// "audience", "subject_token", "jwk"} where jwk is the test's private key.
// Output: one JSON line with the lease's claims. Any failure throws.
import * as oauth from 'oauth4webapi'
import * as jose from 'jose'
import { generateProof } from 'dpop'
import assert from 'node:assert/strict'

const input = JSON.parse(await new Promise((resolve) => {
  let s = ''
  process.stdin.on('data', (c) => { s += c })
  process.stdin.on('end', () => resolve(s))
}))
const insecure = { [oauth.allowInsecureRequests]: true } // loopback http only
const issuer = new URL(input.issuer)

const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
)
assert.ok(as.grant_types_supported.includes('urn:ietf:params:oauth:grant-type:token-exchange'))

const { d, ...pub } = input.jwk
const keyPair = {
  privateKey: await jose.importJWK(input.jwk, 'ES256'),
  publicKey: await jose.importJWK(pub, 'ES256', { extractable: true }),
}
const client = { client_id: 'demo-app' }
const DPoP = oauth.DPoP(client, keyPair)

const params = new URLSearchParams({
  subject_token: input.subject_token,
  subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
  requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
  scope: 'orders:write',
  resource: input.audience,
  ttl: '3600',
})
const tokens = await oauth.processGenericTokenEndpointResponse(
  as,
  client,
  await oauth.genericTokenEndpointRequest(as, client, oauth.None(), 'urn:ietf:params:oauth:grant-type:token-exchange', params, { DPoP, ...insecure }),
)
assert.equal(tokens.token_type, 'dpop')
assert.equal(tokens.expires_in, 300) // asked 3600, the policy's cap is 5m: clamped, and said so
assert.equal(tokens.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token')
assert.equal(tokens.scope, 'orders:write')

const url = input.audience + '/v1/orders'
const proof = await generateProof(keyPair, url, 'GET', undefined, tokens.access_token)
const request = new Request(url, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: proof } })
const claims = await oauth.validateJwtAccessToken(as, request, input.audience, insecure)
process.stdout.write(JSON.stringify(claims) + '\n')
