// A real third-party client against a running `keyless dev`: npm
// oauth4webapi runs discovery, device authorization, the DPoP token
// request, refresh and revocation; jose verifies the access token against
// the published JWKS. The Go test (sidecar/cmd/keyless/interop_test.go)
// starts the server, answers the approval request this script prints on
// stdout by running `keyless approve`, and checks the exit status.
//
// Protocol with the driver: one JSON line {"user_code": "..."} on stdout,
// then one line on stdin when the code is approved. Any failure throws and
// exits non-zero. Usage: ISSUER=http://127.0.0.1:PORT node oauth4webapi_flow.mjs
import * as oauth from 'oauth4webapi'
import * as jose from 'jose'
import { generateProof } from 'dpop'
import { createInterface } from 'node:readline'
import assert from 'node:assert/strict'

const insecure = { [oauth.allowInsecureRequests]: true } // loopback http only
const issuer = new URL(process.env.ISSUER)
const step = (msg) => process.stderr.write(`oauth4webapi: ${msg}\n`)

// 1. Discovery (RFC 8414).
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
)
assert.ok(as.dpop_signing_alg_values_supported.includes('ES256'))
assert.ok(as.grant_types_supported.includes('urn:ietf:params:oauth:grant-type:device_code'))
step('discovery ok')

const client = { client_id: 'demo-app' }
const clientAuth = oauth.None()
const keyPair = await oauth.generateKeyPair('ES256')
const DPoP = oauth.DPoP(client, keyPair)
const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(keyPair.publicKey))

// 2. Device authorization (RFC 8628 section 3.1).
const da = await oauth.processDeviceAuthorizationResponse(
  as,
  client,
  await oauth.deviceAuthorizationRequest(as, client, clientAuth, { scope: 'api:read api:write' }, insecure),
)
assert.match(da.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/)
assert.equal(da.verification_uri_complete, `${da.verification_uri}?user_code=${da.user_code}`)
step(`device authorization ok, user code ${da.user_code}`)

// 3. Approval, by the driver through `keyless approve`.
process.stdout.write(JSON.stringify({ user_code: da.user_code }) + '\n')
const rl = createInterface({ input: process.stdin })
const line = await new Promise((resolve) => rl.once('line', resolve))
rl.close()
assert.equal(line.trim(), 'approved')

// 4. DPoP token request (RFC 8628 section 3.4, RFC 9449 section 5).
const tokens = await oauth.processDeviceCodeResponse(
  as,
  client,
  await oauth.deviceCodeGrantRequest(as, client, clientAuth, da.device_code, { DPoP, ...insecure }),
)
assert.equal(tokens.token_type, 'dpop')
assert.equal(tokens.scope, 'api:read api:write')
assert.ok(tokens.refresh_token)
const { payload, protectedHeader } = await jose.jwtVerify(
  tokens.access_token,
  jose.createRemoteJWKSet(new URL(as.jwks_uri), { [jose.customFetch]: fetch }),
  { issuer: as.issuer, typ: 'at+jwt', algorithms: ['ES256'] },
)
assert.equal(protectedHeader.typ, 'at+jwt')
assert.equal(payload.cnf.jkt, jkt)
assert.equal(payload.sub, 'alice')
assert.equal(payload.client_id, 'demo-app')
step('device code grant ok, access token verified against the JWKS')

// 5. Refresh (rotating, bound to the same DPoP key).
const refreshed = await oauth.processRefreshTokenResponse(
  as,
  client,
  await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, { DPoP, ...insecure }),
)
assert.equal(refreshed.token_type, 'dpop')
assert.notEqual(refreshed.refresh_token, tokens.refresh_token)
assert.equal(jose.decodeJwt(refreshed.access_token).cnf.jkt, jkt)
step('refresh ok')

// A refresh with another key is refused.
const other = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))
await assert.rejects(
  oauth.processRefreshTokenResponse(as, client,
    await oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshed.refresh_token, { DPoP: other, ...insecure })),
  (err) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant',
)

// 6. Revocation (RFC 7009), then the revoked refresh token no longer works.
// The token is DPoP-bound, so its revocation carries a proof of its key
// (docs/revocation.md): oauth4webapi sends it as an extra header. Without
// one, or with another key's, the answer is 400 invalid_dpop_proof and the
// token stays valid.
const revokeWith = async (keys, tok) =>
  oauth.revocationRequest(as, client, clientAuth, tok, {
    ...insecure,
    headers: keys ? { DPoP: await generateProof(keys, as.revocation_endpoint, 'POST') } : {},
  })
const otherKeys = await oauth.generateKeyPair('ES256')
for (const keys of [null, otherKeys]) {
  await assert.rejects(
    oauth.processRevocationResponse(await revokeWith(keys, refreshed.refresh_token)),
    (err) => err instanceof oauth.ResponseBodyError && err.status === 400 && err.error === 'invalid_dpop_proof',
  )
}
step('revocation without a proof of the key refused')
await oauth.processRevocationResponse(await revokeWith(keyPair, refreshed.refresh_token))
await assert.rejects(
  oauth.processRefreshTokenResponse(as, client,
    await oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshed.refresh_token, { DPoP, ...insecure })),
  (err) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant',
)
step('revocation ok')

// A second redemption of the device code is refused (and would revoke the
// grant it produced, which is already revoked here).
await assert.rejects(
  oauth.processDeviceCodeResponse(as, client,
    await oauth.deviceCodeGrantRequest(as, client, clientAuth, da.device_code, { DPoP, ...insecure })),
  (err) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant',
)
step('device code reuse refused')
process.stdout.write(JSON.stringify({ done: true }) + '\n')
