// End-to-end test of the Where2Eat demo (demo/) in real headless Chromium:
// the recommender behind mutual TLS with throwaway certificates, `keyless
// dev --config demo/keyless.yaml` (ports and paths replaced by free ones),
// and the micro app from demo/appserver. A user signs in on the app, approves
// on the verification page in a second browser context (as on a phone),
// sees recommendations without the redacted owner_email, is refused a vote
// with a clear message, is revoked with `keyless revoke` and falls back to
// sign-in. With KEYLESS_SCREENSHOTS=1 (make screenshots) screenshots go to
// docs/screenshots/demo-*.png for demo/README.md.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFile } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startKeyless, keyless, launchChromium, root, keylessBin, screenshotDir } from './harness.mjs'

const run = promisify(execFile)
const shots = screenshotDir
const PASSWORD = 'where2eat-demo' // documented in demo/README.md

let tmp, secrets, rec, app, stack, browser, apiKey
const procs = []

async function freePort() {
  const s = createServer()
  await new Promise((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address()
  await new Promise((r) => s.close(r))
  return port
}

/** Spawns a process and waits (bounded) until its output matches re. */
async function startProc(name, cmd, args, re) {
  const proc = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  const p = { proc, out: '', err: '' }
  proc.stdout.on('data', (c) => { p.out += c })
  proc.stderr.on('data', (c) => { p.err += c })
  procs.push(p)
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${p.out}${p.err}`)), 15000)
    const check = () => { if (re.test(p.out + p.err)) { clearTimeout(timer); resolve() } }
    proc.stdout.on('data', check)
    proc.stderr.on('data', check)
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited ${code}:\n${p.out}${p.err}`)) })
  })
  return p
}

/** The recommender's JSON request log. */
const requestLog = () => rec.out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((l) => l.msg === 'request')

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'where2eat-e2e-'))
  secrets = join(tmp, 'secrets')
  await run('go', ['build', '-o', join(tmp, 'bin') + '/', './demo/certs', './demo/recommender', './demo/appserver'],
    { cwd: root, timeout: 120000 })
  await run(join(tmp, 'bin', 'certs'), ['-out', secrets], { timeout: 10000 })
  apiKey = (await readFile(join(secrets, 'api-key'), 'utf8')).trim()

  const [apiPort, appPort] = [await freePort(), await freePort()]
  rec = await startProc('recommender', join(tmp, 'bin', 'recommender'), ['-addr', `127.0.0.1:${apiPort}`, '-secrets', secrets], /listening on/)
  // demo/keyless.yaml as make demo runs it, with this test's ports and paths.
  const cfg = (await readFile(join(root, 'demo', 'keyless.yaml'), 'utf8'))
    .replaceAll('127.0.0.1:8789', `127.0.0.1:${appPort}`)
    .replaceAll('127.0.0.1:8790', `127.0.0.1:${apiPort}`)
    .replaceAll('.keyless-demo/secrets/', secrets + '/')
  const cfgFile = join(tmp, 'keyless.yaml')
  await writeFile(cfgFile, cfg)
  stack = await startKeyless({ config: cfgFile })
  await startProc('appserver', join(tmp, 'bin', 'appserver'),
    ['-addr', `127.0.0.1:${appPort}`, '-issuer', stack.issuer, '-api', stack.proxy], /serving/)
  app = `http://127.0.0.1:${appPort}`
  await mkdir(shots, { recursive: true })
  browser = await launchChromium()
})

after(async () => {
  await browser?.close()
  await stack?.stop()
  for (const p of procs) p.proc.kill('SIGTERM')
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

const login = (page) => page.locator('keyless-login')
const waitStatus = (page, status, timeout = 20000) => page.locator(`keyless-login[status="${status}"]`).waitFor({ timeout })

/** Presses Sign in; returns the user code and the verification_uri_complete link. */
async function startSignIn(page) {
  await page.locator('keyless-login button[part~="sign-in"]').click()
  await page.waitForFunction(() => /^[A-Z]{4}-[A-Z]{4}$/.test(document.querySelector('keyless-login')?.shadowRoot.querySelector('.code')?.textContent || ''), null, { timeout: 20000 })
  const code = (await page.locator('keyless-login .code').textContent()).trim()
  const link = await page.locator('keyless-login a[part="link"]').getAttribute('href')
  return { code, link }
}

test('Where2Eat: sign in on a phone, recommendations, refused vote, redaction, revoke', async () => {
  const desk = await browser.newContext({ viewport: { width: 1200, height: 800 } })
  const page = await desk.newPage()
  const cspErrors = []
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) cspErrors.push(m.text()) })
  const missing = [] // e.g. the favicon every browser asks for
  page.on('response', (r) => { if (r.status() === 404) missing.push(r.url()) })
  await page.goto(app + '/')
  await page.locator('#signed-out').waitFor()
  await page.screenshot({ path: join(shots, 'demo-1-signed-out.png') })

  const { code, link } = await startSignIn(page)
  assert.match(link, new RegExp(`^${stack.issuer}/device\\?`))
  await page.screenshot({ path: join(shots, 'demo-2-code.png') })

  // The phone: a second browser context opens the QR code's link, signs in
  // and approves.
  const phone = await browser.newContext({ viewport: { width: 390, height: 760 }, isMobile: true, hasTouch: true })
  const ph = await phone.newPage()
  await ph.goto(link)
  await ph.getByText(code).waitFor()
  await ph.getByText('Where2Eat').first().waitFor()
  await ph.fill('#username', 'alice')
  await ph.fill('#password', PASSWORD)
  await ph.screenshot({ path: join(shots, 'demo-3-phone-approve.png') })
  await ph.getByRole('button', { name: 'Sign in and approve' }).click()
  await ph.getByRole('status').waitFor()
  await phone.close()

  // Back on the app: signed in, recommendations shown.
  await waitStatus(page, 'signed_in')
  await page.locator('#results li.card').first().waitFor({ timeout: 15000 })
  await page.selectOption('select[name="price"]', '2')
  const loaded = page.waitForResponse((r) => r.url().startsWith(stack.proxy + '/recommendations?price=2'))
  await page.click('#filters button[type="submit"]')
  const resp = await loaded
  assert.equal(resp.status(), 200)
  const body = await resp.json()
  assert.ok(body.restaurants.length > 0)
  assert.ok(body.restaurants.every((r) => r.price <= 2))
  assert.ok(body.restaurants.every((r) => !('owner_email' in r)), 'owner_email reached the app')
  assert.equal(body.for, 'alice')
  await page.locator('#results li.card').first().waitFor()
  assert.doesNotMatch(await page.locator('body').innerText(), /@\w+\.example/)
  await page.screenshot({ path: join(shots, 'demo-4-recommendations.png') })

  // A vote needs recommendations:write, which the policy never grants: the
  // sidecar refuses it (403 insufficient_scope) and nothing reaches the API.
  const before = requestLog().length
  const refused = page.waitForResponse((r) => r.url() === stack.proxy + '/votes' && r.request().method() === 'POST')
  await page.locator('#results li.card button.vote').first().click()
  const vr = await refused
  assert.equal(vr.status(), 403)
  assert.match(vr.headers()['www-authenticate'] || '', /insufficient_scope/)
  const msg = page.locator('#message[data-kind="warning"]')
  await msg.waitFor()
  assert.match(await msg.textContent(), /Not allowed to vote.*recommendations:write.*read-only/)
  await page.screenshot({ path: join(shots, 'demo-5-vote-refused.png') })
  assert.equal(requestLog().length, before, 'the refused vote reached the recommender')

  // What the recommender saw: the sidecar's identity headers, its API key,
  // its client certificate, and no user credential.
  const lines = requestLog().filter((l) => l.path === '/recommendations')
  assert.ok(lines.length >= 2, rec.out)
  for (const l of lines) {
    assert.equal(l.status, 200)
    assert.equal(l.sub, 'alice')
    assert.equal(l.client, 'where2eat')
    assert.equal(l.scope, 'recommendations:read')
    assert.ok(l.lease, 'lease id header')
    assert.equal(l.peer_cert, 'keyless-proxy')
    assert.equal(l.api_key_present, true)
    assert.equal(l.saw_authorization, false, 'Authorization reached the recommender')
    assert.equal(l.saw_dpop, false, 'DPoP reached the recommender')
    assert.equal(l.saw_cookie, false, 'Cookie reached the recommender')
    assert.equal(l.user_agent, '', 'User-Agent was not scrubbed')
  }
  assert.ok(!rec.out.includes(apiKey), 'the API key was logged')

  // An admin revokes every lease of alice: the next call gets 401
  // invalid_token, the component fires keyless-expired, the app falls back
  // to sign-in.
  const out = await keyless('revoke', '--sub', 'alice', '--data', stack.data)
  assert.match(out, /revoked sub alice/)
  await page.click('#filters button[type="submit"]')
  await waitStatus(page, 'expired')
  await page.locator('#signed-out').waitFor()
  assert.match(await page.locator('#signed-out-reason').textContent(), /revoked/)
  // Said once: the app explains it, the element does not repeat it.
  const said = await page.evaluate(() => document.body.innerText + ' ' + document.querySelector('keyless-login').shadowRoot.textContent)
  assert.equal(said.match(/session ended/gi)?.length, 1, said)
  assert.equal(await page.locator('#planner').isHidden(), true)
  assert.equal(await page.locator('#results li').count(), 0)
  assert.equal(await page.locator('keyless-login button[part~="sign-in"]').isVisible(), true)
  await page.screenshot({ path: join(shots, 'demo-6-revoked.png') })
  assert.deepEqual(cspErrors, [], 'CSP violations')
  assert.deepEqual(missing, [], '404s')
  await desk.close()
})

test('Where2Eat preview mode: example answers, badge, nothing reaches the API', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } })
  const page = await ctx.newPage()
  await page.goto(app + '/?preview')
  const before = requestLog().length
  const { code } = await startSignIn(page)
  await keyless('approve', code, '--as', 'bob', '--data', stack.data)
  await waitStatus(page, 'signed_in')
  await page.locator('#preview-badge').waitFor()
  await page.getByText('Example Noodle Bar').waitFor()
  await page.screenshot({ path: join(shots, 'demo-7-preview.png') })
  assert.equal(requestLog().length, before, 'a preview lease reached the recommender')
  await ctx.close()
})

test('demo/keyless.yaml policy tests pass', async () => {
  const { stdout } = await run(keylessBin, ['policy', 'test', join(root, 'demo', 'keyless.yaml')], { timeout: 20000 })
  assert.match(stdout, /7 policy tests passed/)
})

test('no key material in the app or the component assets', async () => {
  const files = []
  for (const f of await readdir(join(root, 'demo', 'app'))) files.push(join(root, 'demo', 'app', f))
  for (const f of ['keyless.js', 'wasm_exec.js', 'keyless.wasm']) files.push(join(root, 'web-component', f))
  const served = []
  for (const p of ['/', '/app.js', '/style.css', '/keyless/keyless.js', '/keyless/wasm_exec.js']) {
    served.push([app + p, await (await fetch(app + p)).text()])
  }
  const contents = [...await Promise.all(files.map(async (f) => [f, (await readFile(f)).toString('latin1')])), ...served]
  assert.ok(contents.length >= 8)
  const secretsPEM = await Promise.all(['ca.pem', 'proxy-key.pem', 'recommender-key.pem'].map((f) => readFile(join(secrets, f), 'utf8')))
  const keyBodies = secretsPEM.map((p) => p.split('\n')[1]) // a line of each PEM body
  for (const [name, text] of contents) {
    assert.doesNotMatch(text, /-----BEGIN [A-Z ]+-----/, `${name}: PEM block`)
    assert.ok(!text.includes(apiKey), `${name}: the API key`)
    assert.doesNotMatch(text, /w2e_[A-Za-z0-9_-]{20,}/, `${name}: an API key`)
    assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/, `${name}: a JWT`)
    assert.doesNotMatch(text, /"d"\s*:\s*"[A-Za-z0-9_-]{20,}"/, `${name}: a private JWK`)
    for (const b of keyBodies) assert.ok(!text.includes(b), `${name}: certificate or key bytes`)
  }
})
