// Test harness for the browser tests: a real `keyless dev` (bin/keyless),
// an echo upstream that records what it receives, a static server for the
// page and the component, and headless Debian Chromium via playwright-core.
// Everything listens on 127.0.0.1 with port 0.
import { spawn, execFile } from 'node:child_process'
import { createServer } from 'node:http'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, extname, normalize, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { chromium } from 'playwright-core'

export const root = normalize(join(dirname(fileURLToPath(import.meta.url)), '..', '..'))
export const keylessBin = join(root, 'bin', 'keyless')

/**
 * Where tests save their screenshots: docs/screenshots (committed, for the
 * READMEs) when KEYLESS_SCREENSHOTS=1 (`make screenshots`), else a
 * temporary directory, so an ordinary test run leaves the tree clean.
 */
export const screenshotDir = process.env.KEYLESS_SCREENSHOTS === '1'
  ? join(root, 'docs', 'screenshots')
  : join(tmpdir(), 'keyless-screenshots')

/** An upstream API that records every request (headers lowercase) and answers JSON. */
export async function startEcho() {
  const hits = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => { body += c })
    req.on('end', () => {
      hits.push({ method: req.method, url: req.url, headers: { ...req.headers }, body })
      res.setHeader('Content-Type', 'application/json')
      res.end(JSON.stringify({ ok: true, path: req.url, sub: req.headers['x-keyless-sub'] || null }))
    })
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${server.address().port}`, hits, close: () => server.close() }
}

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
}

/**
 * Serves web-component/ and demo/ from the repository; extra maps paths to
 * {body, type, headers} (or a function returning one) for generated pages.
 */
export async function startStatic(extra = {}) {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname
    const entry = extra[path]
    if (entry) {
      // Pages may be functions, for pages that name servers started later.
      const page = typeof entry === 'function' ? entry() : entry
      res.writeHead(200, { 'Content-Type': page.type || types['.html'], ...(page.headers || {}) })
      res.end(page.body)
      return
    }
    const file = normalize(join(root, path))
    if (!file.startsWith(root + '/') || !/^\/(web-component|demo)\//.test(path)) {
      res.writeHead(404).end()
      return
    }
    try {
      const body = await readFile(file)
      res.writeHead(200, { 'Content-Type': types[extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-cache' })
      res.end(body)
    } catch {
      res.writeHead(404).end()
    }
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() }
}

/**
 * Starts `keyless dev` on free ports with a fresh data directory and waits
 * for its banner. Resolves with {issuer, proxy, data, output(), stop()}.
 */
export async function startKeyless({ upstream, config, extraArgs = [] } = {}) {
  const data = await mkdtemp(join(tmpdir(), 'keyless-e2e-'))
  const args = ['dev', '--data', data, '--issuer-addr', '127.0.0.1:0', '--proxy-addr', '127.0.0.1:0',
    '--assets', join(root, 'web-component'), ...extraArgs]
  if (upstream) args.push('--upstream', upstream)
  if (config) args.push('--config', config)
  const proc = spawn(keylessBin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout.on('data', (c) => { out += c })
  proc.stderr.on('data', (c) => { out += c })
  const urls = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`keyless dev did not start:\n${out}`)), 20000)
    const check = () => {
      const issuer = /Issuer:\s+(\S+)/.exec(out)?.[1]
      const proxy = /Proxy:\s+(http\S+)/.exec(out)?.[1]
      if (issuer && proxy) {
        clearTimeout(timer)
        resolve({ issuer, proxy })
      }
    }
    proc.stdout.on('data', check)
    proc.on('exit', (code) => reject(new Error(`keyless dev exited ${code}:\n${out}`)))
  })
  return {
    ...urls,
    data,
    output: () => out,
    async stop() {
      proc.kill('SIGTERM')
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.on('exit', r)))
      await rm(data, { recursive: true, force: true })
    },
  }
}

const run = promisify(execFile)

/** Runs a keyless subcommand (e.g. approve CODE --as alice --data DIR). */
export async function keyless(...args) {
  const { stdout } = await run(keylessBin, args, { timeout: 20000 })
  return stdout
}

/** Launches Debian's headless Chromium with the flags this sandbox needs. */
export function launchChromium() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  })
}

/**
 * A page with the component, as a builder pastes it. src is where
 * keyless.js comes from: this test site, or the issuer (`ISSUER/keyless/`).
 */
export function embedPage({ issuer, proxy, clientId = 'demo-app', scope = 'api:read', csp, extra = '', src = '/web-component/keyless.js' }) {
  const meta = csp ? `<meta http-equiv="Content-Security-Policy" content="${csp}">` : ''
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">${meta}<title>keyless test</title>
<script type="module" src="${src}"></script></head>
<body><keyless-login issuer="${issuer}" client-id="${clientId}" scope="${scope}" api="${proxy}"></keyless-login>${extra}</body></html>`
}
