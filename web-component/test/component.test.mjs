// Browser tests of <keyless-login> and the WASM client in real headless
// Chromium against a real `keyless dev` (issuer, vending, proxy) and an echo
// upstream. Run by `make test` (node --test) after `make build wasm`.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PNG } from 'pngjs'
import jsQR from 'jsqr'
import { startEcho, startStatic, startKeyless, keyless, launchChromium, embedPage, root, screenshotDir } from './harness.mjs'

let echo, stack, site, browser
const shots = screenshotDir

before(async () => {
  echo = await startEcho()
  const csp = () => [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "img-src 'self' data:",
    "style-src 'self'",
    `connect-src 'self' ${stack.issuer} ${stack.proxy}`,
    "frame-ancestors 'self'",
  ].join('; ')
  site = await startStatic({
    '/index.html': () => ({ body: embedPage(stack) }),
    // The two-line snippet with the component served by the issuer itself.
    '/hosted.html': () => ({ body: embedPage({ ...stack, src: stack.issuer + '/keyless/keyless.js' }) }),
    '/strict.html': () => ({ body: embedPage(stack), headers: { 'Content-Security-Policy': csp() } }),
    '/canvas.html': { body: `<!doctype html><title>canvas</title><h1>A no-code canvas</h1><iframe src="/strict.html" width="420" height="520" title="app"></iframe>` },
  })
  stack = await startKeyless({ upstream: echo.url, extraArgs: ['--allow-origin', site.url] })
  await mkdir(shots, { recursive: true })
  browser = await launchChromium()
})

after(async () => {
  await browser?.close()
  await stack?.stop()
  site?.close()
  echo?.close()
})

/** Records the component's events in the page. */
async function watchEvents(frame) {
  await frame.evaluate(() => {
    window.__events = []
    for (const t of ['keyless-state', 'keyless-authenticated', 'keyless-error', 'keyless-expired']) {
      document.addEventListener(t, (e) => window.__events.push({ type: t, detail: e.detail }))
    }
  })
}

const events = (frame) => frame.evaluate(() => window.__events)

async function waitStatus(frame, status, timeout = 20000) {
  await frame.locator(`keyless-login[status="${status}"]`).waitFor({ timeout })
}

/** Clicks Sign in and returns the user code shown. */
async function startSignIn(frame) {
  await frame.locator('keyless-login button[part~="sign-in"]').click()
  const code = frame.locator('keyless-login .code')
  await code.waitFor({ state: 'visible', timeout: 20000 })
  await frame.waitForFunction(() => /^[A-Z]{4}-[A-Z]{4}$/.test(document.querySelector('keyless-login').shadowRoot.querySelector('.code').textContent))
  return (await code.textContent()).trim()
}

async function decodeQR(locator) {
  const png = PNG.sync.read(await locator.screenshot())
  const qr = jsQR(new Uint8ClampedArray(png.data), png.width, png.height)
  assert.ok(qr, 'QR code not decodable')
  return qr.data
}

test('sign in, call the API through the proxy, key stays non-extractable, reload keeps the key', async () => {
  const ctx = await browser.newContext({ viewport: { width: 480, height: 640 } })
  const page = await ctx.newPage()
  await page.goto(site.url + '/index.html')
  await watchEvents(page)
  await page.locator('keyless-login').screenshot({ path: join(shots, '1-signed-out.png') })

  const userCode = await startSignIn(page)
  const link = await page.locator('keyless-login a[part="link"]').getAttribute('href')
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/device\?/)
  assert.equal(await decodeQR(page.locator('keyless-login img.qr')), link, 'QR encodes verification_uri_complete')
  await page.locator('keyless-login').screenshot({ path: join(shots, '2-code.png') })

  await keyless('approve', userCode, '--as', 'alice', '--data', stack.data)
  await waitStatus(page, 'signed_in')
  await page.locator('keyless-login').screenshot({ path: join(shots, '3-signed-in.png') })

  const evs = await events(page)
  const states = evs.filter((e) => e.type === 'keyless-state').map((e) => e.detail.status)
  assert.deepEqual(states.slice(0, 2), ['starting', 'code'])
  assert.ok(states.includes('approved'), `states ${states}`)
  const auth = evs.find((e) => e.type === 'keyless-authenticated')
  assert.ok(auth, 'keyless-authenticated fired')
  assert.equal(auth.detail.subject, 'alice')
  assert.match(auth.detail.jkt, /^[A-Za-z0-9_-]{43}$/)

  // element.fetch through the proxy to the echo upstream. Page code cannot
  // substitute credentials: its own Authorization header is dropped.
  const before = echo.hits.length
  const res = await page.evaluate(async (url) => {
    const r = await document.querySelector('keyless-login').fetch(url + '/v1/things?x=1', { headers: { Authorization: 'DPoP page-supplied' } })
    return { status: r.status, body: await r.json() }
  }, stack.proxy)
  assert.equal(res.status, 200, JSON.stringify(res))
  assert.equal(echo.hits.length, before + 1)
  const hit = echo.hits.at(-1)
  assert.equal(hit.headers['x-keyless-sub'], 'alice')
  assert.equal(hit.headers.authorization, undefined, 'Authorization forwarded')
  assert.equal(hit.headers.dpop, undefined, 'DPoP forwarded')
  assert.equal(hit.headers.cookie, undefined, 'cookie forwarded')

  // The DPoP key is a non-extractable CryptoKey in IndexedDB; no token in
  // any web storage.
  const storage = await page.evaluate(async () => {
    const db = await new Promise((ok, ko) => { const r = indexedDB.open('keyless'); r.onsuccess = () => ok(r.result); r.onerror = () => ko(r.error) })
    const all = await new Promise((ok) => { const r = db.transaction('keys').objectStore('keys').getAll(); r.onsuccess = () => ok(r.result) })
    let exportError = null
    const key = all.find((r) => r.privateKey)
    try { await crypto.subtle.exportKey('jwk', key.privateKey) } catch (e) { exportError = e.name }
    const strings = [...Object.values(localStorage), ...Object.values(sessionStorage), document.cookie, JSON.stringify(all)]
    return { records: all.length, extractable: key.privateKey.extractable, exportError, leaked: strings.some((s) => s.includes('eyJ')) }
  })
  assert.equal(storage.records, 2, 'the key and the renewal token bound to it')
  assert.equal(storage.extractable, false)
  assert.equal(storage.exportError, 'InvalidAccessError')
  assert.equal(storage.leaked, false, 'a token is in web storage')

  // Reload: the lease was in memory only; the session resumes from the
  // kept renewal token (bound to the same key), with no new approval.
  await page.reload()
  await waitStatus(page, 'signed_in')
  const s2 = await page.evaluate(() => document.querySelector('keyless-login').session)
  assert.equal(s2.restored, true)
  assert.equal(s2.jkt, auth.detail.jkt, 'reload changed the DPoP key')

  // Sign out revokes: the element forgets the lease.
  await page.locator('keyless-login button[part~="sign-out"]').click()
  await waitStatus(page, 'signed_out')
  const after = await page.evaluate(async (url) => {
    try { await document.querySelector('keyless-login').fetch(url + '/v1/things'); return 'sent' } catch (e) { return e.code }
  }, stack.proxy)
  assert.equal(after, 'not_signed_in')
  await ctx.close()
})

test('denied sign-in shows denial and fires keyless-error (component served by the issuer)', async () => {
  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  const wasm = page.waitForResponse((r) => r.url() === stack.issuer + '/keyless/keyless.wasm')
  await page.goto(site.url + '/hosted.html')
  await watchEvents(page)
  const code = await startSignIn(page)
  const wasmResponse = await wasm
  assert.equal(wasmResponse.headers()['content-type'], 'application/wasm')
  await keyless('deny', code, '--data', stack.data)
  await waitStatus(page, 'denied')
  await page.locator('keyless-login').screenshot({ path: join(shots, '4-denied.png') })
  const err = (await events(page)).find((e) => e.type === 'keyless-error')
  assert.equal(err?.detail.code, 'access_denied')
  assert.match(await page.locator('keyless-login [part="status"]').textContent(), /denied/)
  await ctx.close()
})

test('works inside an iframe under a strict CSP', async () => {
  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  const violations = []
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()) })
  await page.goto(site.url + '/canvas.html')
  const frame = page.frameLocator('iframe')
  const f = page.frames().find((x) => x.url().endsWith('/strict.html'))
  await f.waitForLoadState()
  await watchEvents(f)
  await frame.locator('keyless-login button[part~="sign-in"]').click()
  await frame.locator('keyless-login .code').waitFor({ state: 'visible', timeout: 20000 })
  await f.waitForFunction(() => /^[A-Z]{4}-[A-Z]{4}$/.test(document.querySelector('keyless-login').shadowRoot.querySelector('.code').textContent))
  const code = (await frame.locator('keyless-login .code').textContent()).trim()
  await keyless('approve', code, '--as', 'alice', '--data', stack.data)
  await waitStatus(f, 'signed_in')
  const status = await f.evaluate(async (url) => (await document.querySelector('keyless-login').fetch(url + '/v1/x')).status, stack.proxy)
  assert.equal(status, 200)
  assert.deepEqual(violations, [], 'CSP violations')
  await page.screenshot({ path: join(shots, '5-iframe-strict-csp.png') })
  await ctx.close()
})

test('a server nonce challenge from the proxy is answered once, transparently', async () => {
  let nonceStack
  const nsite = await startStatic({ '/index.html': () => ({ body: embedPage(nonceStack) }) })
  nonceStack = await startKeyless({ upstream: echo.url, extraArgs: ['--allow-origin', nsite.url, '--proxy-nonce'] })
  try {
    const ctx = await browser.newContext()
    const page = await ctx.newPage()
    await page.goto(nsite.url + '/index.html')
    const code = await startSignIn(page)
    await keyless('approve', code, '--as', 'alice', '--data', nonceStack.data)
    await waitStatus(page, 'signed_in')
    const before = echo.hits.length
    const statuses = await page.evaluate(async (url) => {
      const el = document.querySelector('keyless-login')
      const out = []
      for (let i = 0; i < 3; i++) out.push((await el.fetch(url + '/v1/n' + i)).status)
      return out
    }, nonceStack.proxy)
    assert.deepEqual(statuses, [200, 200, 200])
    assert.equal(echo.hits.length, before + 3)
    // The first call met the challenge; the nonce was then remembered, so
    // the later calls needed no retry: exactly one use_dpop_nonce.
    const challenges = nonceStack.output().split('\n').filter((l) => l.includes('"msg":"proxy decision"') && l.includes('"rule":"dpop.nonce"'))
    assert.equal(challenges.length, 1, challenges.join('\n'))
    await ctx.close()
  } finally {
    nsite.close()
    await nonceStack.stop()
  }
})

test('a code that is not approved in time expires, and the element says so', async () => {
  // A config whose device codes live 30 seconds, the shortest allowed. The user's hash is of a
  // throwaway test password; nobody signs in with it here.
  const dir = await mkdtemp(join(tmpdir(), 'keyless-expiry-'))
  const config = join(dir, 'keyless.yaml')
  await writeFile(config, `
issuer: {device_code_ttl: 30s, poll_interval: 1s}
clients:
  - {id: demo-app, scopes: [api:read], default_scopes: [api:read]}
users:
  - {name: alice, password_hash: "$2a$10$25Mou5mUNEtfBSZG6XLjZ.N8ViLuh3eJ47fFHYaOpsi/2aCS6M1By"}
policy:
  apps:
    demo-app:
      scopes: {api:read: read}
      rules:
        - {name: everyone-reads, subjects: ["*"], scopes: [api:read]}
`)
  let exp
  const esite = await startStatic({ '/index.html': () => ({ body: embedPage(exp) }) })
  exp = await startKeyless({ upstream: echo.url, config, extraArgs: ['--allow-origin', esite.url] })
  try {
    const ctx = await browser.newContext()
    const page = await ctx.newPage()
    await page.goto(esite.url + '/index.html')
    await watchEvents(page)
    await startSignIn(page)
    await waitStatus(page, "expired", 45000)
    await page.locator('keyless-login').screenshot({ path: join(shots, '6-expired.png') })
    const evs = await events(page)
    assert.ok(evs.some((e) => e.type === 'keyless-expired'), 'keyless-expired fired')
    assert.equal(evs.find((e) => e.type === 'keyless-error')?.detail.code, 'expired_token')
    // The start button offers to try again.
    assert.equal(await page.locator('keyless-login button[part~="sign-in"]').isVisible(), true)
    await ctx.close()
  } finally {
    esite.close()
    await exp.stop()
  }
})

test('verification_uri_complete becomes a link only when https, or http on a loopback host', async () => {
  // A malicious (or broken) issuer: the real issuer's device authorization answer with both
  // verification URIs replaced, in real Chromium.
  const rows = [
    ['javascript:alert(document.domain)', null],
    ['JavaScript:alert(1)', null],
    ['\tjavascript:alert(1)', null],
    ['data:text/html,<script>alert(1)</script>', null],
    ['http://evil.example/device?user_code=BCDF-GHJK', null],
    ['//evil.example/device', null],
    ['https://auth.example.test/device?user_code=BCDF-GHJK', 'https://auth.example.test/device?user_code=BCDF-GHJK'],
    ['http://localhost:8787/device?user_code=BCDF-GHJK', 'http://localhost:8787/device?user_code=BCDF-GHJK'],
    ['http://127.0.0.1:8787/device', 'http://127.0.0.1:8787/device'],
    ['http://[::1]:8787/device', 'http://[::1]:8787/device'],
  ]
  const ctx = await browser.newContext()
  try {
    for (const [uri, want] of rows) {
      const page = await ctx.newPage()
      await page.route(stack.issuer + '/device_authorization', async (route) => {
        const resp = await route.fetch()
        const body = await resp.json()
        body.verification_uri = uri
        body.verification_uri_complete = uri
        await route.fulfill({ response: resp, json: body })
      })
      await page.goto(site.url + '/index.html')
      await startSignIn(page)
      const link = page.locator('keyless-login a[part="link"]')
      assert.equal(await link.getAttribute('href'), want, `href for ${JSON.stringify(uri)}`)
      // The URI is still shown, as text.
      assert.equal(await link.textContent(), uri, `text for ${JSON.stringify(uri)}`)
      await page.close()
    }
  } finally {
    await ctx.close()
  }
})
