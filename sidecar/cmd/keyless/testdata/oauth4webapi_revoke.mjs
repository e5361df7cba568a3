// A standard client revokes a lease and a renewal token at the issuer's
// advertised RFC 7009 endpoint (npm oauth4webapi revocationRequest, the
// DPoP proof of the token's key sent as an extra header, signed by npm
// dpop), and the two proxy replicas sharing Redis refuse the leases within
// a second. A revocation with another key's proof is refused (400
// invalid_dpop_proof) and the lease keeps working.
//
// Input on stdin (from sidecar/cmd/keyless/revoke_interop_test.go):
// {"issuer", "public", "replicas": [url, url], "subject_token", "jwk"}.
// Output: one JSON line with the times taken. Any failure throws.
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
const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }))
assert.ok(as.revocation_endpoint, 'the issuer advertises a revocation endpoint')

const { d, ...pub } = input.jwk
const keyPair = {
  privateKey: await jose.importJWK(input.jwk, 'ES256'),
  publicKey: await jose.importJWK(pub, 'ES256', { extractable: true }),
}
const client = { client_id: 'demo-app' }
const DPoP = oauth.DPoP(client, keyPair)

async function vend() {
  const params = new URLSearchParams({
    subject_token: input.subject_token,
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
  })
  const t = await oauth.processGenericTokenEndpointResponse(as, client,
    await oauth.genericTokenEndpointRequest(as, client, oauth.None(), 'urn:ietf:params:oauth:grant-type:token-exchange', params, { DPoP, ...insecure }))
  assert.ok(t.refresh_token.startsWith('klr_'))
  return t
}

// GET at replica i with a fresh proof for the public URL.
async function call(i, lease) {
  const path = '/v1/things'
  const proof = await generateProof(keyPair, input.public + path, 'GET', undefined, lease)
  const res = await fetch(input.replicas[i] + path, { headers: { authorization: `DPoP ${lease}`, dpop: proof } })
  return res.status
}

async function refusedWithin(ms, lease) {
  const start = Date.now()
  const took = []
  for (let i = 0; i < input.replicas.length; i++) {
    for (;;) {
      const status = await call(i, lease)
      if (status === 401) break
      assert.equal(status, 200, `replica ${i}: ${status}`)
      assert.ok(Date.now() - start < ms, `replica ${i} still accepts the revoked lease after ${ms} ms`)
      await new Promise((r) => setTimeout(r, 10))
    }
    took.push(Date.now() - start)
  }
  return took
}

const revoke = async (keys, tok, hint) => oauth.revocationRequest(as, client, oauth.None(), tok, {
  ...insecure,
  additionalParameters: hint ? { token_type_hint: hint } : undefined,
  headers: { DPoP: await generateProof(keys, as.revocation_endpoint, 'POST') },
})

const a = await vend()
const b = await vend()
for (const t of [a, b]) {
  for (let i = 0; i < input.replicas.length; i++) assert.equal(await call(i, t.access_token), 200)
}

// Another key's proof: 400 invalid_dpop_proof, and the lease still works.
const other = await oauth.generateKeyPair('ES256')
for (const tok of [a.access_token, b.refresh_token]) {
  await assert.rejects(oauth.processRevocationResponse(await revoke(other, tok)),
    (err) => err instanceof oauth.ResponseBodyError && err.status === 400 && err.error === 'invalid_dpop_proof')
}
for (let i = 0; i < input.replicas.length; i++) {
  assert.equal(await call(i, a.access_token), 200, 'a wrong-key revocation revoked the lease')
  assert.equal(await call(i, b.access_token), 200, 'a wrong-key revocation revoked the renewal token')
}

// The lease itself.
await oauth.processRevocationResponse(await revoke(keyPair, a.access_token, 'access_token'))
const leaseTook = await refusedWithin(1000, a.access_token)
// A renewal token: its lease family ends; renewal is refused.
await oauth.processRevocationResponse(await revoke(keyPair, b.refresh_token, 'refresh_token'))
const renewalTook = await refusedWithin(1000, b.access_token)
await assert.rejects(
  oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, oauth.None(), b.refresh_token, { DPoP, ...insecure })),
  (err) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant')
process.stdout.write(JSON.stringify({ leaseTook, renewalTook }) + '\n')
