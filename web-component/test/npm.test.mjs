// The component as an npm package (@keyless/login), used the way the
// README's "install the component from npm" says: npm pack, install the
// tarball into a fresh project, bundle with esbuild, copy keyless.wasm and
// wasm_exec.js next to the bundle and name them with setAssetsBase, then
// sign in through the bundle in headless Chromium against `keyless dev`.
// Run by `make test` after `make build wasm`.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createServer } from 'node:http'
import { mkdtemp, mkdir, readFile, writeFile, copyFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, extname, normalize } from 'node:path'
import { promisify } from 'node:util'
import * as esbuild from 'esbuild'
import { startEcho, startKeyless, keyless, launchChromium, root } from './harness.mjs'

const run = promisify(execFile)
let echo, stack, browser, site, work

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'keyless-npm-'))
  echo = await startEcho()
})

after(async () => {
  await browser?.close()
  await stack?.stop()
  site?.close()
  echo?.close()
  if (work) await rm(work, { recursive: true, force: true })
})

/** Serves dir (the bundled app) on a free loopback port. */
async function serveDir(dir) {
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm' }
  const server = createServer(async (req, res) => {
    let path = new URL(req.url, 'http://x').pathname
    if (path === '/') path = '/index.html'
    const file = normalize(join(dir, path))
    if (!file.startsWith(dir + '/')) return res.writeHead(404).end()
    try {
      const body = await readFile(file)
      res.writeHead(200, { 'Content-Type': types[extname(file)] || 'application/octet-stream' }).end(body)
    } catch {
      res.writeHead(404).end()
    }
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() }
}

test('npm pack, install into a fresh project, bundle with esbuild, sign in in Chromium', async () => {
  // One version: VERSION, package.json and `keyless version` agree.
  const version = (await readFile(join(root, 'VERSION'), 'utf8')).trim()
  const pkg = JSON.parse(await readFile(join(root, 'web-component', 'package.json'), 'utf8'))
  assert.equal(pkg.version, version, 'web-component/package.json version is not VERSION')
  const { stdout: kv } = await run(join(root, 'bin', 'keyless'), ['version'])
  assert.match(kv, new RegExp(`^keyless ${version.replaceAll('.', '\\.')}[ \\n]`), 'bin/keyless version (make build stamps VERSION)')

  // npm pack: exactly the package files, the wasm and wasm_exec.js included.
  const packDir = join(work, 'pack')
  await mkdir(packDir)
  const { stdout: packed } = await run('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: join(root, 'web-component') })
  const [info] = JSON.parse(packed)
  assert.deepEqual(info.files.map((f) => f.path).sort(),
    ['README.md', 'keyless-wasm.d.ts', 'keyless.d.ts', 'keyless.js', 'keyless.wasm', 'package.json', 'wasm_exec.js'])
  const tarball = join(packDir, info.filename)

  // A fresh project installs the tarball (no registry needed: no dependencies).
  const app = join(work, 'app')
  await mkdir(join(app, 'src'), { recursive: true })
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'npm-test-app', private: true, type: 'module' }))
  await run('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], { cwd: app })
  const installed = join(app, 'node_modules', '@keyless', 'login')
  assert.equal(JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')).version, version)

  // The app, as the README shows it.
  await writeFile(join(app, 'src', 'main.js'), [
    "import { setAssetsBase } from '@keyless/login'",
    "setAssetsBase('/assets/keyless/')",
    "window.__bundled = true",
  ].join('\n'))
  const dist = join(app, 'dist')
  await esbuild.build({ entryPoints: [join(app, 'src', 'main.js')], bundle: true, format: 'esm', outfile: join(dist, 'app.js'), absWorkingDir: app, logLevel: 'silent' })
  const bundle = await readFile(join(dist, 'app.js'), 'utf8')
  assert.match(bundle, /keyless-login/, 'the component is in the bundle')
  await mkdir(join(dist, 'assets', 'keyless'), { recursive: true })
  for (const f of ['keyless.wasm', 'wasm_exec.js']) await copyFile(join(installed, f), join(dist, 'assets', 'keyless', f))

  site = await serveDir(dist)
  stack = await startKeyless({ upstream: echo.url, extraArgs: ['--allow-origin', site.url] })
  await writeFile(join(dist, 'index.html'), `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>npm app</title>
<script type="module" src="/app.js"></script></head>
<body><keyless-login issuer="${stack.issuer}" client-id="demo-app" scope="api:read" api="${stack.proxy}"></keyless-login></body></html>`)

  browser = await launchChromium()
  const page = await browser.newPage()
  const fetched = []
  page.on('request', (r) => fetched.push(new URL(r.url()).pathname))
  await page.goto(site.url + '/')
  await page.waitForFunction(() => window.__bundled === true)
  await page.locator('keyless-login button[part~="sign-in"]').click()
  const code = page.locator('keyless-login .code')
  await page.waitForFunction(() => /^[A-Z]{4}-[A-Z]{4}$/.test(document.querySelector('keyless-login')?.shadowRoot?.querySelector('.code')?.textContent || ''), null, { timeout: 20000 })
  await keyless('approve', (await code.textContent()).trim(), '--as', 'alice', '--data', stack.data)
  await page.locator('keyless-login[status="signed_in"]').waitFor({ timeout: 20000 })

  // The wasm came from where setAssetsBase said, not from beside the bundle.
  assert.ok(fetched.includes('/assets/keyless/keyless.wasm'), `requests: ${fetched}`)
  assert.ok(fetched.includes('/assets/keyless/wasm_exec.js'), `requests: ${fetched}`)

  const res = await page.evaluate(async (url) => {
    const r = await document.querySelector('keyless-login').fetch(url + '/v1/things')
    return { status: r.status, body: await r.json() }
  }, stack.proxy)
  assert.equal(res.status, 200, JSON.stringify(res))
  assert.equal(echo.hits.at(-1).headers['x-keyless-sub'], 'alice')
})
