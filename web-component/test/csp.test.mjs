// The README's snippet and Content-Security-Policies, as written, in real
// headless Chromium against `keyless dev`: both hosting choices (assets
// from the issuer, self-hosted) sign in with no CSP violation. And a
// sandboxed iframe without allow-same-origin (no IndexedDB) signs in with a
// key kept in memory, says storage_unavailable, and never shows Go panic
// text. Needs `make build wasm`.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startEcho, startStatic, startKeyless, keyless, launchChromium, root } from './harness.mjs'

let echo, stack, site, browser
const readme = await readFile(join(root, 'web-component', 'README.md'), 'utf8')

/** The code blocks of one README section, in order. */
function blocks(heading, lang = '') {
  const start = readme.indexOf(`\n## ${heading}\n`)
  assert.ok(start >= 0, `README has no "## ${heading}" section`)
  const end = readme.indexOf('\n## ', start + 4)
  const section = readme.slice(start, end < 0 ? undefined : end)
  return [...section.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1])
}

// The README's example hosts and app, replaced by this test's servers and
// the sandbox app.
const local = (s) => s.replaceAll('https://auth.example.com', stack.issuer).replaceAll('https://api.example.com', stack.proxy)
  .replace('client-id="where2eat"', 'client-id="demo-app"').replace('scope="recommendations:read"', 'scope="api:read"')
const snippet = () => local(readme.slice(readme.indexOf('```html\n') + 8, readme.indexOf('```', readme.indexOf('```html\n') + 8)))
const policies = () => blocks('Content-Security-Policy').map((p) => local(p).replace(/\s*\n\s*/g, ' ').trim())

function page(body, csp) {
  return { body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>csp</title></head><body>${body}</body></html>`,
    headers: csp ? { 'Content-Security-Policy': csp } : {} }
}

before(async () => {
  echo = await startEcho()
  site = await startStatic({
    // As documented: the snippet verbatim, under the first policy.
    '/issuer-hosted.html': () => page(snippet(), policies()[0]),
    // Self-hosted: the snippet with src pointing at the copied assets.
    '/self-hosted.html': () => page(snippet().replace(/src="[^"]*keyless\.js"/, 'src="/web-component/keyless.js"'), policies()[1]),
    '/no-preload.html': () => page(snippet().replace('<keyless-login ', '<keyless-login preload="none" ')),
    '/unknown-client.html': () => page(snippet().replace('client-id="demo-app"', 'client-id="not-registered"')),
    '/sandboxed.html': { body: '<!doctype html><title>canvas</title><iframe sandbox="allow-scripts" src="/issuer-hosted.html" width="420" height="520"></iframe>' },
  })
  stack = await startKeyless({ upstream: echo.url, extraArgs: ['--allow-origin', site.url] })
  browser = await launchChromium()
})

after(async () => {
  await browser?.close()
  await stack?.stop()
  site?.close()
  echo?.close()
})

/** Collects CSP violations and the component's events in a frame. */
async function watch(frame) {
  await frame.evaluate(() => {
    window.__seen = { violations: [], events: [] }
    document.addEventListener('securitypolicyviolation', (e) => window.__seen.violations.push(`${e.violatedDirective} ${e.blockedURI}`))
    for (const t of ['keyless-error', 'keyless-authenticated']) {
      document.addEventListener(t, (e) => window.__seen.events.push({ type: t, detail: e.detail }))
    }
  })
}

async function signIn(frame) {
  await frame.locator('keyless-login button[part~="sign-in"]').click({ timeout: 20000 })
  await frame.waitForFunction(() => /^[A-Z]{4}-[A-Z]{4}$/.test(document.querySelector('keyless-login')?.shadowRoot.querySelector('.code')?.textContent || ''), null, { timeout: 20000 })
  const code = (await frame.locator('keyless-login .code').textContent()).trim()
  await keyless('approve', code, '--as', 'alice', '--data', stack.data)
  await frame.locator('keyless-login[status="signed_in"]').waitFor({ timeout: 20000 })
}

test('the README documents two policies, one per hosting choice', () => {
  const ps = blocks('Content-Security-Policy')
  assert.equal(ps.length, 2, 'one policy for assets from the issuer, one for self-hosted')
  assert.match(ps[0], /script-src 'self' https:\/\/auth\.example\.com 'wasm-unsafe-eval'/)
  assert.match(snippet(), /src="[^"]*\/keyless\/keyless\.js"/, 'the snippet loads the component from the issuer')
})

for (const name of ['issuer-hosted', 'self-hosted']) {
  test(`${name}: the snippet under its documented CSP signs in with no violation`, async () => {
    const ctx = await browser.newContext()
    const p = await ctx.newPage()
    await p.goto(`${site.url}/${name}.html`)
    await watch(p)
    await signIn(p)
    const seen = await p.evaluate(() => window.__seen)
    assert.deepEqual(seen.violations, [])
    assert.ok(seen.events.some((e) => e.type === 'keyless-authenticated' && e.detail.keyPersistent === true))
    // One line says who is signed in, not two ("Signed in as alice" and "Signed in.").
    const text = await p.evaluate(() => document.querySelector('keyless-login').shadowRoot.querySelector('.card').innerText)
    assert.equal(text.match(/Signed in/g)?.length, 1, text)
    await ctx.close()
  })
}

test('sandboxed iframe without allow-same-origin: storage_unavailable, in-memory key, no panic text', async () => {
  const ctx = await browser.newContext()
  const p = await ctx.newPage()
  await p.goto(`${site.url}/sandboxed.html`)
  let frame
  await p.waitForFunction(() => true)
  for (let i = 0; i < 100 && !frame; i++) {
    frame = p.frames().find((f) => f.url().endsWith('/issuer-hosted.html'))
    if (!frame) await p.waitForTimeout(50)
  }
  assert.ok(frame, 'the iframe did not load')
  await frame.locator('keyless-login button[part~="sign-in"]').waitFor({ timeout: 20000 })
  await watch(frame)
  await signIn(frame).catch(async (e) => {
    throw new Error(`${e.message}\nthe element shows: ${await frame.evaluate(() => document.querySelector('keyless-login').shadowRoot.textContent)}`)
  })
  const seen = await frame.evaluate(() => window.__seen)
  const warn = seen.events.find((e) => e.type === 'keyless-error')
  assert.equal(warn?.detail.code, 'storage_unavailable', JSON.stringify(seen.events))
  assert.equal(warn.detail.recoverable, true)
  const auth = seen.events.find((e) => e.type === 'keyless-authenticated')
  assert.equal(auth?.detail.keyPersistent, false)
  const text = await frame.evaluate(() => document.querySelector('keyless-login').shadowRoot.textContent)
  assert.doesNotMatch(text, /panic|JavaScript error|IDBFactory|goroutine/)
  assert.match(text, /reload/i, 'the page says a reload needs a new sign-in')
  await ctx.close()
})

test('an app the issuer does not know: invalid_client, and the element names the client-id to register', async () => {
  const ctx = await browser.newContext()
  const p = await ctx.newPage()
  await p.goto(`${site.url}/unknown-client.html`)
  await watch(p)
  await p.locator('keyless-login button[part~="sign-in"]').click({ timeout: 20000 })
  await p.locator('keyless-login[status="error"]').waitFor({ timeout: 20000 })
  const seen = await p.evaluate(() => window.__seen)
  assert.equal(seen.events.find((e) => e.type === 'keyless-error')?.detail.code, 'invalid_client')
  const text = await p.evaluate(() => document.querySelector('keyless-login').shadowRoot.textContent)
  assert.match(text, /client-id "not-registered"\) is not registered with the issuer/)
  assert.match(stack.output(), /"msg":"client.unknown".*"client_id":"not-registered"/)
  await ctx.close()
})

test('keyless.wasm: fetched compressed from the issuer as soon as the element connects; preload="none" waits for the click', async () => {
  const ctx = await browser.newContext()
  const p = await ctx.newPage()
  const wasm = p.waitForResponse((r) => r.url() === `${stack.issuer}/keyless/keyless.wasm`, { timeout: 20000 })
  await p.goto(`${site.url}/issuer-hosted.html`)
  const res = await wasm // no click: the element started it
  const h = await res.allHeaders()
  assert.equal(h['content-encoding'], 'br')
  assert.match(h.vary || '', /Accept-Encoding/i)
  const { responseBodySize } = await res.request().sizes()
  assert.ok(responseBodySize > 0 && responseBodySize < 2_000_000, `keyless.wasm is ${responseBodySize} bytes on the wire`)

  const p2 = await ctx.newPage()
  const seen = []
  p2.on('request', (r) => { if (r.url().endsWith('/keyless.wasm')) seen.push(r.url()) })
  await p2.goto(`${site.url}/no-preload.html`)
  await p2.locator('keyless-login button[part~="sign-in"]').waitFor()
  await p2.waitForTimeout(300) // bounded: a preload would have started at connect
  assert.deepEqual(seen, [], 'preload="none" fetched keyless.wasm before the click')
  const onClick = p2.waitForResponse((r) => r.url().endsWith('/keyless.wasm'), { timeout: 20000 })
  await p2.locator('keyless-login button[part~="sign-in"]').click()
  await onClick
  await ctx.close()
})
