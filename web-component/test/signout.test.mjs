// Sign out takes effect: in real headless Chromium against a real `keyless
// dev`, sign in, capture the lease and renewal token the page received,
// click Sign out; then the lease with a fresh proof by the page's own key
// is refused at the proxy (401) and renewal is refused (invalid_grant),
// both within a second, with one audit line for the revocation; and the
// element emits keyless-state signed_out. Run by `make test` after
// `make build wasm`.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startEcho, startStatic, startKeyless, keyless, launchChromium, embedPage } from './harness.mjs'

let echo, stack, site, browser

before(async () => {
  echo = await startEcho()
  site = await startStatic({ '/index.html': () => ({ body: embedPage(stack) }) })
  stack = await startKeyless({ upstream: echo.url, extraArgs: ['--allow-origin', site.url] })
  browser = await launchChromium()
})

after(async () => {
  await browser?.close()
  await stack?.stop()
  site?.close()
  echo?.close()
})

/**
 * Signs a DPoP proof (RFC 9449 section 4.2) in the page with the page's own
 * non-extractable key from IndexedDB, as an attacker running script in
 * the page after sign-out could.
 */
function pageProof(page, htm, htu, accessToken) {
  return page.evaluate(async ({ htm, htu, accessToken }) => {
    const db = await new Promise((ok, ko) => { const r = indexedDB.open('keyless'); r.onsuccess = () => ok(r.result); r.onerror = () => ko(r.error) })
    const [rec] = await new Promise((ok) => { const r = db.transaction('keys').objectStore('keys').getAll(); r.onsuccess = () => ok(r.result) })
    const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', rec.publicKey)
    const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
    const enc = (obj) => b64(new TextEncoder().encode(JSON.stringify(obj)))
    const claims = { jti: crypto.randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000) }
    if (accessToken) claims.ath = b64(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(accessToken)))
    const input = enc({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } }) + '.' + enc(claims)
    const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, rec.privateKey, new TextEncoder().encode(input))
    return input + '.' + b64(sig)
  }, { htm, htu, accessToken })
}

async function callProxy(page, lease) {
  const url = stack.proxy + '/v1/things'
  const res = await fetch(url, { headers: { Authorization: 'DPoP ' + lease, DPoP: await pageProof(page, 'GET', url, lease) } })
  return { status: res.status, www: res.headers.get('www-authenticate') || '' }
}

async function renew(page, renewalToken) {
  const url = stack.issuer + '/token'
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', DPoP: await pageProof(page, 'POST', url) },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: renewalToken, client_id: 'demo-app' }),
  })
  return { status: res.status, body: await res.json() }
}

/** Polls check() until it returns true, for at most ms; returns the time taken. */
async function within(ms, check) {
  const start = Date.now()
  for (;;) {
    if (await check()) return Date.now() - start
    if (Date.now() - start > ms) return -1
    await new Promise((r) => setTimeout(r, 25))
  }
}

test('Sign out revokes the lease and its renewal at once, and emits signed_out', async () => {
  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  // Capture what the page receives from the token exchange: the lease and
  // its renewal token (a script in the page, or a proxy log, could too).
  const leases = []
  page.on('response', async (res) => {
    if (res.url() === stack.issuer + '/token' && res.status() === 200) {
      const body = await res.json().catch(() => ({}))
      if (body.issued_token_type) leases.push(body)
    }
  })
  await page.goto(site.url + '/index.html')
  await page.evaluate(() => {
    window.__states = []
    document.addEventListener('keyless-state', (e) => window.__states.push(e.detail.status))
  })
  await page.locator('keyless-login button[part~="sign-in"]').click()
  const code = page.locator('keyless-login .code')
  await code.waitFor({ state: 'visible', timeout: 20000 })
  await page.waitForFunction(() => /^[A-Z]{4}-[A-Z]{4}$/.test(document.querySelector('keyless-login').shadowRoot.querySelector('.code').textContent))
  await keyless('approve', (await code.textContent()).trim(), '--as', 'alice', '--data', stack.data)
  await page.locator('keyless-login[status="signed_in"]').waitFor({ timeout: 20000 })
  await within(5000, () => leases.length > 0)
  const lease = leases.at(-1)
  assert.ok(lease?.access_token && lease?.refresh_token?.startsWith('klr_'), 'lease and renewal token captured')

  // Before: the captured lease with the page's key works.
  assert.equal((await callProxy(page, lease.access_token)).status, 200)

  await page.locator('keyless-login button[part~="sign-out"]').click()
  await page.locator('keyless-login[status="signed_out"]').waitFor({ timeout: 10000 })
  const signedOut = Date.now()
  const states = await page.evaluate(() => window.__states)
  assert.equal(states.at(-1), 'signed_out', `keyless-state events: ${states}`)

  let last
  const tookProxy = await within(1000, async () => {
    last = await callProxy(page, lease.access_token)
    return last.status === 401
  })
  assert.ok(tookProxy >= 0, `the proxy still answers ${last.status} to the signed-out lease`)
  assert.match(last.www, /error="invalid_token"/)
  let r
  const tookRenew = await within(1000, async () => {
    r = await renew(page, lease.refresh_token)
    return r.status === 400 && r.body.error === 'invalid_grant'
  })
  assert.ok(tookRenew >= 0, `renewal after sign-out: ${r.status} ${JSON.stringify(r.body)}`)
  assert.ok(Date.now() - signedOut < 5000)

  // One audit line for the revocation, naming the lease, never a token.
  const leaseID = JSON.parse(Buffer.from(lease.access_token.split('.')[1], 'base64url')).lease_id
  // The audit log is written through a queue: the line may land a moment
  // after the answer, so it is awaited (bounded).
  let audit, lines
  for (const deadline = Date.now() + 10000; ;) {
    audit = await readFile(join(stack.data, 'audit.log'), 'utf8')
    lines = audit.split('\n').filter((l) => l.includes('"event":"lease.revoke"') && l.includes(`"lease_id":"${leaseID}"`))
    if (lines.length > 0 || Date.now() > deadline) break
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.equal(lines.length, 1, lines.join('\n'))
  assert.ok(!audit.includes(lease.access_token) && !audit.includes(lease.refresh_token), 'a token in the audit log')
  await ctx.close()
})
