// Benchmark: verified, forwarded GET /v1/orders through the Worker (local
// workerd via wrangler dev) and through the native sidecar, side by side,
// same origin, same lease, a fresh proof per request (made before timing).
// Bounded: N requests per target and repetition (default 400),
// concurrency 8, R repetitions (default 3) in rotated order; the median
// is reported.
//
//	node sidecar/edge/bench.mjs [N] [R] [name=distdir ...]
//
// Targets: the native sidecar; the Worker as `make edge` built it; a
// plain JS Worker that only forwards (the floor: what workerd in dev mode
// costs by itself); the same JS Worker writing one audit-sized
// console.log line per request (the platform's cost of a log line, which
// the Worker pays for its audit line); and any other builds of the Worker
// given as name=distdir (a sidecar/edge/dist of an earlier commit, for a
// like-for-like comparison: `git worktree add /tmp/old REF && make -C
// /tmp/old edge`, then old=/tmp/old/sidecar/edge/dist).
//
// CPU per request is read from /proc for each target's own processes:
// its wrangler dev process group's workerd (the Worker and its Durable
// Objects), and for the native sidecar the Go helper (native sidecar plus
// the shared origin). Other users' processes are not counted.
import { Agent, request } from 'node:http'
import { readFileSync, readdirSync, writeFileSync, cpSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { generateProof } from 'dpop'
import { build, startIssuer, writeWranglerConfig, startWorker, tempDir } from './test/world.mjs'
import { newKey, mint, publicURL } from './test/client.mjs'

const N = Number(process.argv[2] || 400)
const R = Number(process.argv[3] || 3)
const extra = process.argv.slice(4).map((a) => a.split('='))
const C = 8
const TICK = 100 // clock ticks per second (USER_HZ)

function cpuTicks(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ')
    return Number(fields[11]) + Number(fields[12]) // utime + stime
  } catch {
    return 0 // exited
  }
}

// workerdIn lists the workerd processes of process group pgid (wrangler
// dev starts workerd in its own group).
function workerdIn(pgid) {
  const out = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8')
      if (f.includes('(workerd)') && Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[2]) === pgid) out.push(Number(d))
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
    req.setTimeout(15000, () => req.destroy(new Error('timeout')))
    req.on('error', () => { failed++; resolve() })
    req.end()
  })
  const t0 = performance.now()
  await Promise.all(Array.from({ length: C }, async () => { while (next < proofs.length) await one() }))
  const s = (performance.now() - t0) / 1000
  agent.destroy()
  return { rps: proofs.length / s, failed }
}

// jsWorker starts a plain JS Worker forwarding to the origin; with log,
// it writes one line shaped like the audit line per request.
async function jsWorker(dir, name, origin, log) {
  const main = join(dir, name + '.mjs')
  const line = log
    ? `console.log(JSON.stringify({ time: new Date().toISOString(), level: 'INFO', msg: 'proxy decision', decision: 'allow', status: res.status, method: req.method, path: new URL(req.url).pathname, latency_ms: Date.now() - t0, remote: '', route: 'orders-read', token_sha256: '0011223344556677', client: 'demo-app', sub: 'alice', lease: 'lse_0123456789abcdefghij', jti: '0123456789abcdef0123456789abcdef' }));`
    : ''
  writeFileSync(main, `export default { async fetch(req, env) { const t0 = Date.now(); const res = await fetch(env.ORIGIN + new URL(req.url).pathname, { headers: req.headers }); ${line} return res } }`)
  const file = join(dir, name + '.json')
  writeFileSync(file, JSON.stringify({ name: 'keyless-edge-' + name, main, compatibility_date: '2026-04-01', vars: { ORIGIN: origin } }))
  return startWorker(file, join(dir, name + '-state'))
}

// keylessWorker starts a build of the Worker (dist: a directory holding
// worker.mjs, wasm_exec.js and keyless-edge.wasm).
async function keylessWorker(dir, name, config, dist) {
  const sub = join(dir, name)
  mkdirSync(sub)
  const file = await writeWranglerConfig(sub, config, { KEYLESS_REVOCATION_TTL: '2s' })
  if (dist) {
    const copy = join(sub, 'dist')
    cpSync(dist, copy, { recursive: true })
    const c = JSON.parse(readFileSync(file, 'utf8'))
    c.main = join(copy, 'worker.mjs')
    // A build from before the rate limits has no RateLimiter class.
    if (!readFileSync(join(copy, 'worker.mjs'), 'utf8').includes('class RateLimiter')) {
      c.durable_objects.bindings = c.durable_objects.bindings.filter((b) => b.class_name !== 'RateLimiter')
      c.migrations = c.migrations.filter((m) => !m.new_sqlite_classes.includes('RateLimiter'))
    }
    writeFileSync(file, JSON.stringify(c))
  }
  return startWorker(file, join(sub, 'state'))
}

const tmp = await tempDir()
const bin = build(tmp.dir)
const world = await startIssuer(bin)
const targets = []
try {
  targets.push({ name: 'native sidecar', url: world.native, pids: () => [world.pid], native: true })
  for (const [name, dist] of [['edge Worker', null], ...extra]) {
    const w = await keylessWorker(tmp.dir, name.replace(/\W/g, '-'), world.config, dist)
    targets.push({ name: name + (dist ? ' (' + dist + ')' : ''), w, url: w.url, pids: () => workerdIn(w.pgid) })
  }
  for (const [name, log] of [['plain JS Worker, no checks (floor)', false], ['floor + one console.log line per request', true]]) {
    const w = await jsWorker(tmp.dir, log ? 'floorlog' : 'floor', world.origin, log)
    targets.push({ name, w, url: w.url, pids: () => workerdIn(w.pgid), floor: !log, floorlog: log })
  }
  const client = await newKey()
  const tok = await mint(world, { scope: ['orders:read'], jkt: client.jkt })
  const proofs = (n) => Promise.all(Array.from({ length: n }, () => generateProof(client.kp, publicURL + '/v1/orders', 'GET', undefined, tok)))
  // Warm all (JWKS, key imports, JIT), then measure.
  for (const t of targets) await run(t.url, await proofs(200), tok)
  for (const t of targets) t.runs = []
  for (let rep = 0; rep < R; rep++) {
    const order = targets.slice(rep % targets.length).concat(targets.slice(0, rep % targets.length))
    for (const t of order) {
      const p = await proofs(N)
      const pids = t.pids()
      const before = pids.map(cpuTicks).reduce((a, b) => a + b, 0)
      const r = await run(t.url, p, tok)
      const ms = (pids.map(cpuTicks).reduce((a, b) => a + b, 0) - before) / TICK * 1000 / N
      t.runs.push({ ms, rps: r.rps, failed: r.failed })
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  for (const t of targets) t.ms = median(t.runs.map((x) => x.ms))
  const floor = targets.find((t) => t.floor).ms
  const floorlog = targets.find((t) => t.floorlog).ms
  console.table(targets.map((t) => ({
    target: t.name,
    'req/s (median)': Math.round(median(t.runs.map((x) => x.rps))),
    failed: t.runs.reduce((a, x) => a + x.failed, 0),
    'CPU ms/req (median)': t.ms.toFixed(2),
    runs: t.runs.map((x) => x.ms.toFixed(2)).join(' '),
    'over floor': t.native ? '' : (t.ms - floor).toFixed(2),
    'over floor + log': t.native ? '' : (t.ms - floorlog).toFixed(2),
  })))
  console.log(`N=${N} per run, concurrency ${C}, ${R} runs each in rotated order; CPU: workerd of each wrangler dev (Worker and Durable Objects); native: the Go helper (sidecar and origin)`)
} finally {
  for (const t of targets) await t.w?.stop()
  world.close()
  await tmp.remove()
}
