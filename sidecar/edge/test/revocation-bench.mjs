// Benchmark (not a test): revocation -> refusal at the edge Worker, in real
// workerd (wrangler dev, local mode), the edge row beside the native rows of
// BenchmarkRevocationToRefusal (sidecar/cmd/keyless). Two paths:
//   push: the issuer's push to POST /.keyless/revocations;
//   feed: a revocation written only to the issuer's log, which the Worker
//         learns by following the revocation feed (docs/revocation.md).
// Each path runs against a Worker configured for it: push alone (no feed
// configured, the Worker knows only what is pushed) and feed.
// Each round mints a lease, checks it passes, revokes it, then sends a
// request with a fresh proof every STEP_MS until one is refused; the time
// from the revocation to that refusal is one sample. Bounded: ROUNDS rounds
// per path, each given up after GIVE_UP_MS. It prints p50 and p99 and fails
// nothing on numbers.
// Run: make build && node sidecar/edge/test/revocation-bench.mjs [ROUNDS]
import { join } from 'node:path'
import { build, startIssuer, writeWranglerConfig, startWorker, tempDir, revokeToken } from './world.mjs'
import { newKey, mint, send, publicURL } from './client.mjs'
import { generateProof } from 'dpop'

const ROUNDS = Number(process.argv[2] || 30)
const STEP_MS = 5
const GIVE_UP_MS = 10000
// The feed's poll interval: the Worker asks the issuer at most this often.
const INTERVAL_MS = 250

const tmp = await tempDir()
let world, worker
try {
  world = await startIssuer(build(tmp.dir))
  const client = await newKey()
  const paths = {
    push: {
      vars: {},
      revoke: (r) => fetch(worker.url + '/.keyless/revocations', {
        method: 'POST', headers: { Authorization: 'Bearer ' + revokeToken }, body: JSON.stringify(r),
      }),
    },
    feed: {
      vars: {
        KEYLESS_REVOCATION_FEED: world.feed,
        KEYLESS_REVOCATION_FEED_SECRET: world.feed_secret,
        KEYLESS_REVOCATION_FEED_INTERVAL: INTERVAL_MS + 'ms',
        KEYLESS_REVOCATION_FEED_MAX_STALE: '10s',
      },
      revoke: (r) => fetch(world.issuer + '/log/revoke', { method: 'POST', body: JSON.stringify(r) }),
    },
  }
  const get = async (tok) => {
    const proof = await generateProof(client.kp, publicURL + '/v1/orders', 'GET', undefined, tok)
    return (await send(worker.url, { method: 'GET', path: '/v1/orders', headers: [['Authorization', 'DPoP ' + tok], ['DPoP', proof]] })).status
  }
  for (const [name, { vars, revoke }] of Object.entries(paths)) {
    const configFile = await writeWranglerConfig(join(tmp.dir), world.config, vars)
    worker = await startWorker(configFile, join(tmp.dir, 'state-' + name))
    const ms = []
    let lost = 0
    for (let i = 0; i < ROUNDS; i++) {
      const lease = `lease-bench-${name}-${i}-` + Math.random().toString(36).slice(2)
      const tok = await mint(world, { scope: ['orders:read'], jkt: client.jkt, lease_id: lease })
      const before = await get(tok)
      if (before !== 200) throw new Error(`${name}: a fresh lease got ${before}`)
      const start = performance.now()
      const res = await revoke({ kind: 'lease', value: lease, until: Math.floor(Date.now() / 1000) + 3600 })
      if (res.status !== 204) throw new Error(`${name}: revoke answered ${res.status} ${await res.text()}`)
      let refused = false
      while (performance.now() - start < GIVE_UP_MS) {
        const status = await get(tok)
        if (status === 401) { refused = true; break }
        if (status !== 200) throw new Error(`${name}: got ${status} while waiting for the refusal`)
        await new Promise((r) => setTimeout(r, STEP_MS))
      }
      if (refused) ms.push(performance.now() - start)
      else lost++
    }
    ms.sort((a, b) => a - b)
    const q = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]
    console.log(`edge Worker, ${name} (${ms.length} rounds${lost ? `, ${lost} not refused within ${GIVE_UP_MS} ms` : ''}${name === 'feed' ? `, poll interval ${INTERVAL_MS} ms` : ''}): ` +
      `p50 ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms`)
    await worker.stop()
    worker = null
  }
} finally {
  await worker?.stop()
  world?.close()
  await tmp.remove()
}
