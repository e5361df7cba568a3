// Interop with code nobody here wrote.
//
//   node interop.mjs make    -> JSON lines of proofs made by npm `dpop` (panva)
//   node interop.mjs verify  <- JSON lines {alg, proof, htu, htm} made by Go;
//                            -> JSON lines {ok, jkt, error} from npm `jose`
import * as dpop from 'dpop'
import * as jose from 'jose'
import { createInterface } from 'node:readline'

const mode = process.argv[2]
const htu = 'https://api.example.test/v1/orders'
const token = 'interop-access-token'

async function make() {
  for (const alg of ['ES256', 'PS256', 'RS256', 'Ed25519']) {
    const kp = await dpop.generateKeyPair(alg)
    const jwk = await jose.exportJWK(kp.publicKey)
    const jkt = await jose.calculateJwkThumbprint(jwk, 'sha256')
    const proof = await dpop.generateProof(kp, htu + '?q=1', 'GET', 'server-nonce', token)
    console.log(JSON.stringify({ alg, jkt, proof, htu, htm: 'GET', nonce: 'server-nonce', token }))
  }
}

async function verify() {
  const rl = createInterface({ input: process.stdin })
  for await (const line of rl) {
    if (!line.trim()) continue
    const v = JSON.parse(line)
    try {
      const { payload, protectedHeader } = await jose.jwtVerify(v.proof, jose.EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: ['ES256', 'Ed25519', 'EdDSA'],
      })
      if (payload.htu !== v.htu || payload.htm !== v.htm) throw new Error('htu/htm mismatch')
      if (protectedHeader.jwk.d !== undefined) throw new Error('private jwk')
      const jkt = await jose.calculateJwkThumbprint(protectedHeader.jwk, 'sha256')
      console.log(JSON.stringify({ name: v.name, ok: true, jkt, jti: payload.jti }))
    } catch (e) {
      console.log(JSON.stringify({ name: v.name, ok: false, error: String(e.code || e.message) }))
    }
  }
}

if (mode === 'make') await make()
else if (mode === 'verify') await verify()
else { console.error('usage: interop.mjs make|verify'); process.exit(2) }
