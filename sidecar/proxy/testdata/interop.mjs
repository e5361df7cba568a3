// Positive interop against the keyless proxy with clients nobody here
// wrote (docs/security.md#i-5, #i-6): npm `dpop` proofs for every algorithm the
// proxy enables, and oauth4webapi's DPoP handle and protectedResourceRequest
// against a proxy in nonce mode (first call answered use_dpop_nonce, the
// library retries once).
//
// The test servers are plain HTTP on loopback, hence allowInsecureRequests.
//
// Protocol with the Go test, one JSON object per line:
//   out {need: name, alg, jkt}   the test mints a lease bound to jkt
//   in  {name, lease}
//   out {result: name, status, sub, attempts}
import * as dpop from 'dpop'
import * as oauth from 'oauth4webapi'
import * as jose from 'jose'
import { createInterface } from 'node:readline'

const [proxy, nonceProxy] = process.argv.slice(2)
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const send = (o) => process.stdout.write(JSON.stringify(o) + '\n')

async function leaseFor(name, alg, kp) {
  const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(kp.publicKey), 'sha256')
  send({ need: name, alg, jkt })
  const { value } = await lines.next()
  return JSON.parse(value).lease
}

for (const alg of ['ES256', 'Ed25519', 'PS256', 'RS256']) {
  const kp = await dpop.generateKeyPair(alg)
  const lease = await leaseFor(alg, alg, kp)
  const url = `${proxy}/v1/orders?alg=${alg}`
  const res = await fetch(url, {
    headers: { Authorization: `DPoP ${lease}`, DPoP: await dpop.generateProof(kp, url, 'GET', undefined, lease) },
  })
  const body = await res.json().catch(() => ({}))
  send({ result: alg, status: res.status, sub: body.sub ?? null, attempts: 1 })
}

{
  const kp = await dpop.generateKeyPair('ES256')
  const lease = await leaseFor('oauth4webapi', 'ES256', kp)
  const handle = oauth.DPoP({}, kp)
  let attempts = 0
  let status = 0
  let sub = null
  for (let i = 0; i < 2; i++) {
    attempts++
    try {
      const res = await oauth.protectedResourceRequest(lease, 'GET', new URL(`${nonceProxy}/v1/orders`), new Headers(), null, { DPoP: handle, [oauth.allowInsecureRequests]: true })
      status = res.status
      sub = (await res.json()).sub
      break
    } catch (err) {
      if (oauth.isDPoPNonceError(err) && i === 0) continue
      status = err.response?.status ?? -1
      break
    }
  }
  // A second call reuses the nonce the handle cached: no challenge.
  const again = await oauth.protectedResourceRequest(lease, 'GET', new URL(`${nonceProxy}/v1/orders`), new Headers(), null, { DPoP: handle, [oauth.allowInsecureRequests]: true })
  send({ result: 'oauth4webapi', status, sub, attempts, again: again.status })
}
process.exit(0)
