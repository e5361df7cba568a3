// Benchmark: verified, forwarded GET /v1/orders through the Worker (local
// workerd via wrangler dev) and through the native sidecar, side by side,
// same origin, same lease, a fresh proof per request (made before timing).
// Bounded: N requests per target (default 2000), concurrency C (default 8).
//
//	node sidecar/edge/bench.mjs [N] [C]
//
// CPU per request is read from /proc: workerd's (both wrangler dev
// sessions' workerd processes: the Worker and its Durable Objects, plus
// the dev-mode plumbing the floor row measures) and the Go helper's
// (native sidecar plus the shared origin).
import { Agent, request } from 'node:http'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateProof } from 'dpop'
import { build, startIssuer, writeWranglerConfig, startWorker, tempDir } from './test/world.mjs'
import { newKey, mint, publicURL } from './test/client.mjs'

const N = Number(process.argv[2] || 2000)
const C = Number(process.argv[3] || 8)
const TICK = 100 // clock ticks per second (USER_HZ)

function cpuTicks(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12]) // utime + stime
}

// pidsNamed lists this benchmark's own processes called name: those in
// the given process groups (wrangler dev starts workerd in its own), or
// the given pids. Other users' workerd processes on a shared machine are
// not counted.
function pidsNamed(name, { groups = [], pids = [] } = {}) {
  const out = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const comm = readFileSync(`/proc/${d}/comm`, 'utf8').trim()
      if (!comm.startsWith(name)) continue
      const f = readFileSync(`/proc/${d}/stat`, 'utf8')
      const pgrp = Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[2])
      if (groups.includes(pgrp) || pids.includes(Number(d))) out.push(Number(d))
    } catch {}
  }
  return out
}

async function run(base, proofs, tok) {
  const agent = new Agent({ keepAlive: true, maxSockets: C })
  const u = new URL(base)
  let next = 0
  let failed = 0
  const one = () => new Promise((resolve) => {
    const i = next++
    const req = request({ host: u.hostname, port: u.port, path: '/v1/orders', agent,
      headers: { Authorization: 'DPoP ' + tok, DPoP: proofs[i] } }, (res) => {
      if (res.statusCode !== 200) failed++
      res.resume()
      res.on('end', resolve)
    })
    req.on('error', () => { failed++; resolve() })
    req.end()
  })
  const t0 = performance.now()
  await Promise.all(Array.from({ length: C }, async () => { while (next < proofs.length) await one() }))
  const s = (performance.now() - t0) / 1000
  agent.destroy()
  return { rps: proofs.length / s, failed, seconds: s }
}

// The floor: a plain JS Worker that forwards to the origin, in the same
// wrangler dev, measures what workerd in dev mode costs by itself.
async function startBaseline(dir, origin) {
  const main = join(dir, 'baseline.mjs')
  writeFileSync(main, `export default { fetch(req, env) { return fetch(env.ORIGIN + new URL(req.url).pathname, { headers: req.headers }) } }`)
  const file = join(dir, 'baseline.json')
  writeFileSync(file, JSON.stringify({ name: 'keyless-edge-baseline', main, compatibility_date: '2026-04-01', vars: { ORIGIN: origin } }))
  return startWorker(file, join(dir, 'baseline-state'))
}

const tmp = await tempDir()
const bin = build(tmp.dir)
const world = await startIssuer(bin)
const worker = await startWorker(await writeWranglerConfig(tmp.dir, world.config, { KEYLESS_REVOCATION_TTL: '2s' }), join(tmp.dir, 'state'))
const baseline = await startBaseline(tmp.dir, world.origin)
try {
  const client = await newKey()
  const tok = await mint(world, { scope: ['orders:read'], jkt: client.jkt })
  const proofs = async (n) => Promise.all(Array.from({ length: n }, () => generateProof(client.kp, publicURL + '/v1/orders', 'GET', undefined, tok)))
  const helper = pidsNamed('issuer', { pids: [world.pid] })
  const workerd = pidsNamed('workerd', { groups: [worker.pgid, baseline.pgid] })
  // Warm all (JWKS, key imports, JIT), then measure.
  await run(worker.url, await proofs(200), tok)
  await run(world.native, await proofs(200), tok)
  await run(baseline.url, await proofs(200), tok)
  const rows = []
  for (const [name, base] of [['native sidecar', world.native], ['edge Worker (workerd)', worker.url], ['plain JS Worker, no checks (floor)', baseline.url]]) {
    const p = await proofs(N)
    const before = { w: workerd.map(cpuTicks), h: helper.map(cpuTicks) }
    const r = await run(base, p, tok)
    const wd = workerd.map(cpuTicks).reduce((a, b) => a + b, 0) - before.w.reduce((a, b) => a + b, 0)
    const hd = helper.map(cpuTicks).reduce((a, b) => a + b, 0) - before.h.reduce((a, b) => a + b, 0)
    rows.push({ target: name, requests: N, concurrency: C, 'req/s': Math.round(r.rps), failed: r.failed,
      'workerd CPU ms/req': (wd / TICK * 1000 / N).toFixed(3), 'Go helper CPU ms/req': (hd / TICK * 1000 / N).toFixed(3) })
  }
  console.table(rows)
} finally {
  await baseline.stop()
  await worker.stop()
  world.close()
  await tmp.remove()
}
