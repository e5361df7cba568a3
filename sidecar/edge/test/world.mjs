// The edge tests' world, all on 127.0.0.1: the Go helper (issuer, lease
// mint, echo origin, native sidecar; ./issuer) and the Worker in real
// workerd through `wrangler dev`, with metrics, the Request.cf download and
// every other network access off.
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtemp, writeFile, rm, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, normalize, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

export const root = normalize(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..'))
export const revokeToken = 'test-revoke-token-' + Math.random().toString(36).slice(2)

/** Builds the Worker (make edge) and the helper; returns the helper's path. */
export function build(dir) {
  // KEYLESS_EDGE_NO_BUILD=1 keeps sidecar/edge/dist as it is (experiments).
  const make = process.env.KEYLESS_EDGE_NO_BUILD ? { status: 0 } : spawnSync('make', ['-s', 'edge'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
  if (make.status !== 0) throw new Error('make edge failed')
  const bin = join(dir, 'issuer')
  const go = spawnSync('go', ['build', '-o', bin, './sidecar/edge/test/issuer'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
  if (go.status !== 0) throw new Error('go build issuer failed')
  return bin
}

/** Starts the helper; resolves to its URLs and configuration. */
export async function startIssuer(bin) {
  const proc = spawn(bin, [join(root, 'sidecar/edge/testdata/edge.yaml')], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout })
    rl.once('line', resolve)
    proc.once('exit', (code) => reject(new Error(`issuer exited ${code}`)))
  })
  const info = JSON.parse(line)
  info.pid = proc.pid
  info.close = () => { proc.stdin.end(); proc.kill() }
  return info
}

export async function freePort() {
  const s = createServer()
  await new Promise((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address()
  await new Promise((r) => s.close(r))
  return port
}

/**
 * The Worker's wrangler configuration for the test: vars stand in for
 * secrets. The Worker listens on a port chosen here (dev.port, kept across
 * restarts), and its loopback address is listed under `hosts`, as the
 * native sidecar lists its own: a request for any other host is 421.
 */
export async function writeWranglerConfig(dir, config, vars = {}) {
  const file = join(dir, 'wrangler.json')
  const port = await freePort()
  await writeFile(file, JSON.stringify({
    name: 'keyless-edge-test',
    main: join(root, 'sidecar/edge/dist/worker.mjs'),
    compatibility_date: '2026-04-01',
    dev: { ip: '127.0.0.1', port },
    durable_objects: { bindings: [
      { name: 'KEYLESS_REPLAY', class_name: 'ReplayGuard' },
      { name: 'KEYLESS_REVOCATIONS', class_name: 'RevocationList' },
      { name: 'KEYLESS_RATELIMIT', class_name: 'RateLimiter' },
    ] },
    migrations: [
      { tag: 'v1', new_sqlite_classes: ['ReplayGuard', 'RevocationList'] },
      { tag: 'v2', new_sqlite_classes: ['RateLimiter'] },
    ],
    vars: {
      KEYLESS_PROXY: config + `\nhosts: ["127.0.0.1:${port}"]\n`,
      ECHO_API_KEY: 'origin-secret',
      KEYLESS_REVOKE_TOKEN: revokeToken,
      KEYLESS_REVOCATION_TTL: '0s',
      ...vars,
    },
  }, null, 1))
  return file
}

/**
 * Runs `wrangler dev` (local workerd) on the configuration's dev.port (a
 * free port if it has none) with state in persistDir; resolves once it
 * answers. stop() ends it and waits.
 */
export async function startWorker(configFile, persistDir, { timeoutMs = 60000, probe = true } = {}) {
  const port = JSON.parse(await readFile(configFile, 'utf8')).dev?.port ?? await freePort()
  const wrangler = join(root, 'node_modules/.bin/wrangler')
  const proc = spawn(wrangler, ['dev', '-c', configFile, '--ip', '127.0.0.1', '--port', String(port),
    '--inspector-port', String(await freePort()), '--persist-to', persistDir,
    '--show-interactive-dev-session=false', '--log-level', process.env.KEYLESS_EDGE_LOG_LEVEL || 'log'], {
    cwd: dirname(configFile),
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', CI: '1', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: stop() ends wrangler and workerd
  })
  let log = ''
  proc.stdout.on('data', (d) => { log += d })
  proc.stderr.on('data', (d) => { log += d })
  const exited = new Promise((r) => proc.once('exit', r))
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (proc.exitCode !== null) throw new Error('wrangler dev exited:\n' + log)
    // probe false: ready once wrangler says so, without a request, so the
    // caller's first requests are the isolate's first.
    if (!probe) {
      if (/Ready on http/.test(log)) break
      await new Promise((r) => setTimeout(r, 200))
      if (Date.now() > deadline) {
        process.kill(-proc.pid, 'SIGTERM')
        throw new Error('wrangler dev did not start:\n' + log)
      }
      continue
    }
    try {
      const res = await fetch(url + '/.keyless/healthz-probe', { signal: AbortSignal.timeout(2000) })
      await res.arrayBuffer()
      break
    } catch {}
    if (Date.now() > deadline) {
      process.kill(-proc.pid, 'SIGTERM')
      throw new Error('wrangler dev did not start:\n' + log)
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  return {
    url,
    pgid: proc.pid, // workerd runs in this process group
    log: () => log,
    stop: async () => {
      try { process.kill(-proc.pid, 'SIGTERM') } catch {}
      const t = setTimeout(() => { try { process.kill(-proc.pid, 'SIGKILL') } catch {} }, 5000)
      await exited
      clearTimeout(t)
    },
  }
}

export async function tempDir() {
  const dir = await mkdtemp(join(tmpdir(), 'keyless-edge-'))
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) }
}

/** Peak RSS (VmHWM, KiB) of the workerd processes in process group pgid. */
export async function workerdPeakKiB(pgid) {
  let peak = 0
  for (const pid of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[2]) !== pgid || !stat.includes('(workerd)')) continue
      const m = /VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))
      if (m) peak = Math.max(peak, Number(m[1]))
    } catch {}
  }
  return peak
}

/**
 * The keys a Durable Object class of the test Worker holds in storage
 * under prefix, read from the SQLite files `wrangler dev --persist-to`
 * keeps in persistDir (workerd's table _cf_KV), with the sqlite3 command
 * (python3's sqlite3 module where it is missing), read-only: what the
 * object would find, without any test-only code in the Worker.
 */
export async function storedKeys(persistDir, className, prefix) {
  const dir = join(persistDir, 'v3', 'do', 'keyless-edge-test-' + className)
  const files = (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite')
  if (files.length === 0) throw new Error(`no Durable Object storage in ${dir}`)
  const keys = []
  for (const f of files) {
    const uri = 'file:' + join(dir, f) + '?mode=ro'
    const sql = `SELECT key FROM _cf_KV WHERE substr(key, 1, ${prefix.length}) = '${prefix.replace(/'/g, "''")}'`
    let out
    try {
      out = execFileSync('sqlite3', [uri, sql], { encoding: 'utf8' })
    } catch (err) {
      if (err.code !== 'ENOENT') throw err
      out = execFileSync('python3', ['-c', 'import sqlite3,sys\nfor (k,) in sqlite3.connect(sys.argv[1], uri=True).execute(sys.argv[2]): print(k)', uri, sql], { encoding: 'utf8' })
    }
    keys.push(...out.split('\n').filter(Boolean))
  }
  return keys.sort()
}
