// Session continuity in real headless Chromium against `keyless dev`: a
// reload resumes the session from the renewal token kept in IndexedDB
// beside the non-extractable key, with no new approval; sign-out clears it
// (a reload then starts signed out); session="memory" keeps nothing.
// Needs `make build wasm`.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startEcho, startStatic, startKeyless, keyless, launchChromium, embedPage } from './harness.mjs'

let echo, stack, site, browser

before(async () => {
  echo = await startEcho()
  site = await startStatic({
    '/index.html': () => ({ body: embedPage(stack) }),
    '/memory.html': () => ({ body: embedPage(stack).replace('<keyless-login ', '<keyless-login session="memory" ') }),
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

const status = (page, s) => page.locator(`keyless-login[status="${s}"]`).waitFor({ timeout: 20000 })

async function signIn(page) {
  await page.locator('keyless-login button[part~="sign-in"]').click()
  await page.waitForFunction(() => /^[A-Z]{4}-[A-Z]{4}$/.test(document.querySelector('keyless-login')?.shadowRoot.querySelector('.code')?.textContent || ''), null, { timeout: 20000 })
  const code = (await page.locator('keyless-login .code').textContent()).trim()
  await keyless('approve', code, '--as', 'alice', '--data', stack.data)
  await status(page, 'signed_in')
}

/** The records of the keyless IndexedDB store: key pairs and kept renewal tokens. */
const stored = (page) => page.evaluate(async () => {
  const db = await new Promise((ok, ko) => { const r = indexedDB.open('keyless'); r.onsuccess = () => ok(r.result); r.onerror = () => ko(r.error) })
  if (!db.objectStoreNames.contains('keys')) return { keys: 0, renewals: 0 }
  const all = await new Promise((ok) => { const r = db.transaction('keys').objectStore('keys').getAll(); r.onsuccess = () => ok(r.result) })
  return { keys: all.filter((r) => r?.privateKey).length, renewals: all.filter((r) => typeof r === 'string').length }
})

const callAPI = (page) => page.evaluate(async (url) => {
  const r = await document.querySelector('keyless-login').fetch(url + '/v1/things')
  return r.status
}, stack.proxy)

test('reload keeps the session without a new approval; sign-out ends it for good', async () => {
  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  await page.goto(site.url + '/index.html')
  await status(page, 'signed_out') // nothing kept yet
  await signIn(page)
  const first = await page.evaluate(() => document.querySelector('keyless-login').session)
  assert.deepEqual(await stored(page), { keys: 1, renewals: 1 })

  const countApprovals = async () => (await keyless('audit', 'query', '--data', stack.data, '--event', 'device.approve', '--format', 'json'))
    .split('\n').filter((l) => l.includes('"device.approve"')).length
  // The audit log is written through a queue: the approval's line is
  // awaited (bounded) before it is counted.
  let approvals = await countApprovals()
  for (const deadline = Date.now() + 10000; approvals < 1 && Date.now() < deadline; approvals = await countApprovals()) {
    await new Promise((r) => setTimeout(r, 100))
  }
  assert.equal(approvals, 1)
  await page.reload()
  await status(page, 'signed_in')
  const again = await page.evaluate(() => document.querySelector('keyless-login').session)
  assert.equal(again.restored, true)
  assert.equal(again.subject, 'alice')
  assert.equal(again.jkt, first.jkt, 'the same key')
  assert.equal(await callAPI(page), 200)
  assert.equal(await countApprovals(), approvals, 'the reload needed a new approval')
  // The kept token was used once and replaced (single-use renewal).
  assert.deepEqual(await stored(page), { keys: 1, renewals: 1 })

  await page.locator('keyless-login button[part~="sign-out"]').click()
  await status(page, 'signed_out')
  assert.equal((await stored(page)).renewals, 0, 'sign-out left the renewal token')
  await page.reload()
  await status(page, 'signed_out')
  assert.equal(await page.evaluate(() => document.querySelector('keyless-login').session), null)
  await ctx.close()
})

test('session="memory": nothing kept, a reload starts signed out', async () => {
  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  await page.goto(site.url + '/memory.html')
  await page.locator('keyless-login button[part~="sign-in"]').waitFor()
  await signIn(page)
  assert.deepEqual(await stored(page), { keys: 1, renewals: 0 })
  await page.reload()
  await page.locator('keyless-login button[part~="sign-in"]').waitFor()
  await page.waitForTimeout(500) // bounded: a resume would have begun by now
  assert.equal(await page.evaluate(() => document.querySelector('keyless-login').session), null)
  assert.notEqual(await page.evaluate(() => document.querySelector('keyless-login').getAttribute('status')), 'signed_in')
  await ctx.close()
})
