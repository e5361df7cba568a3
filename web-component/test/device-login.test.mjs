// keyless's /device page signing in at a real Ory Hydra v2.3.0 (login.oidc)
// in headless Chromium: the component's device flow at keyless, the user
// on /device pressing "Sign in with corp", Hydra with a small login and
// consent app (this file) that signs alice in with the group hydra-admins,
// back to keyless's consent page, Approve; then the API through the proxy
// as corp:alice, allowed by the policy's rule for the mapped group.
// Hydra is built by `make hydra` (tools/hydra); without it the test skips,
// except under CI, where it fails.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:http'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startEcho, startStatic, startKeyless, launchChromium, embedPage, root, screenshotDir } from './harness.mjs'

const hydraBin = process.env.KEYLESS_HYDRA || join(root, '.cache', 'bin', 'hydra')
const haveHydra = existsSync(hydraBin)
if (!haveHydra && process.env.CI) throw new Error(`${hydraBin} is missing in CI: .ci/deps builds it (make hydra)`)
const skip = haveHydra ? false : `${hydraBin} is missing: run make hydra`

/** n distinct free loopback ports: all held open until the last is chosen. */
async function freePorts(n) {
  const servers = []
  for (let i = 0; i < n; i++) {
    const s = createServer()
    await new Promise((r) => s.listen(0, '127.0.0.1', r))
    servers.push(s)
  }
  const ports = servers.map((s) => s.address().port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

async function admin(base, method, path, body) {
  const r = await fetch(base + path, { method, headers: { 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) })
  const text = await r.text()
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`)
  return JSON.parse(text)
}

let echo, site, stack, browser, hydra, loginApp, dir

before(async () => {
  if (skip) return
  echo = await startEcho()
  dir = await mkdtemp(join(tmpdir(), 'keyless-hydra-'))
  const [pub, adm, kport] = await freePorts(3)
  const adminURL = `http://127.0.0.1:${adm}`
  // Hydra's login and consent app: signs alice in, grants openid and
  // profile, puts her groups in the ID token.
  loginApp = createServer(async (req, res) => {
    const u = new URL(req.url, 'http://x')
    try {
      let next
      if (u.pathname === '/login') {
        next = await admin(adminURL, 'PUT', `/admin/oauth2/auth/requests/login/accept?login_challenge=${encodeURIComponent(u.searchParams.get('login_challenge'))}`, { subject: 'alice' })
      } else if (u.pathname === '/consent') {
        next = await admin(adminURL, 'PUT', `/admin/oauth2/auth/requests/consent/accept?consent_challenge=${encodeURIComponent(u.searchParams.get('consent_challenge'))}`,
          { grant_scope: ['openid', 'profile'], session: { id_token: { groups: ['hydra-admins'] } } })
      } else {
        res.writeHead(404).end()
        return
      }
      res.writeHead(302, { Location: next.redirect_to }).end()
    } catch (e) {
      res.writeHead(500).end(String(e))
    }
  })
  await new Promise((r) => loginApp.listen(0, '127.0.0.1', r))
  const app = `http://127.0.0.1:${loginApp.address().port}`
  const proc = spawn(hydraBin, ['serve', 'all', '--dev', '--sqa-opt-out'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env, DSN: 'memory', LOG_LEVEL: 'error',
      SERVE_PUBLIC_HOST: '127.0.0.1', SERVE_PUBLIC_PORT: String(pub), SERVE_ADMIN_HOST: '127.0.0.1', SERVE_ADMIN_PORT: String(adm),
      URLS_SELF_ISSUER: `http://127.0.0.1:${pub}`, URLS_LOGIN: `${app}/login`, URLS_CONSENT: `${app}/consent`,
      SECRETS_SYSTEM: `keyless-test-${Date.now()}-0123456789abcdef`,
    },
  })
  let out = ''
  proc.stdout.on('data', (c) => { out += c })
  proc.stderr.on('data', (c) => { out += c })
  hydra = { proc, stop: () => new Promise((r) => { if (proc.exitCode !== null) r(); else { proc.on('exit', r); proc.kill('SIGTERM') } }) }
  for (let i = 0; ; i++) { // bounded: 300 x 100 ms
    try {
      if ((await fetch(`${adminURL}/health/ready`)).ok) break
    } catch {}
    if (i === 300 || proc.exitCode !== null) throw new Error(`hydra did not start:\n${out}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  const { issuer } = await (await fetch(`http://127.0.0.1:${pub}/.well-known/openid-configuration`)).json()
  const client = await admin(adminURL, 'POST', '/admin/clients', {
    grant_types: ['authorization_code'], response_types: ['code'], scope: 'openid profile',
    redirect_uris: [`http://127.0.0.1:${kport}/device/callback`], token_endpoint_auth_method: 'client_secret_basic',
  })
  await writeFile(join(dir, 'corp.secret'), client.client_secret, { mode: 0o600 })
  await writeFile(join(dir, 'keyless.yaml'), `clients:
  - id: demo-app
    name: Demo micro app
    scopes: [api:read]
    default_scopes: [api:read]
login:
  oidc:
    - name: corp
      issuer: ${JSON.stringify(issuer)}
      client_id: ${JSON.stringify(client.client_id)}
      client_secret_file: ${JSON.stringify(join(dir, 'corp.secret'))}
      scopes: [openid, profile]
      groups_claim: groups
      group_map: {hydra-admins: admins}
policy:
  apps:
    demo-app:
      scopes:
        api:read: read
      rules:
        - name: admins-read
          groups: [admins]
          scopes: [api:read]
`, { mode: 0o600 })
  site = await startStatic({ '/index.html': () => ({ body: embedPage(stack) }) })
  stack = await startKeyless({ upstream: echo.url, config: join(dir, 'keyless.yaml'),
    extraArgs: ['--issuer-addr', `127.0.0.1:${kport}`, '--allow-origin', site.url] })
  browser = await launchChromium()
})

after(async () => {
  await browser?.close()
  await stack?.stop()
  await hydra?.stop()
  loginApp?.close()
  site?.close()
  echo?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

test('/device signs in at Ory Hydra; the lease is corp:alice in the mapped group', { skip }, async () => {
  const ctx = await browser.newContext({ viewport: { width: 480, height: 720 } })
  const page = await ctx.newPage()
  await page.goto(site.url + '/index.html')
  await page.locator('keyless-login button[part~="sign-in"]').click()
  await page.locator('keyless-login .code').waitFor({ state: 'visible', timeout: 20000 })
  const link = await page.locator('keyless-login a[part="link"]').getAttribute('href')

  const tab = await ctx.newPage()
  const violations = []
  tab.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()) })
  await tab.goto(link)
  await tab.screenshot({ path: join(screenshotDir, 'login-oidc-1-sign-in.png') })
  await tab.getByRole('link', { name: 'Sign in with corp' }).click()
  await tab.getByText('Signed in as').waitFor({ timeout: 20000 })
  assert.match(await tab.locator('main').textContent(), /Signed in as corp:alice/)
  await tab.screenshot({ path: join(screenshotDir, 'login-oidc-2-signed-in.png') })
  await tab.getByRole('button', { name: 'Approve' }).click()
  await tab.getByText('is now connected').waitFor({ timeout: 20000 })
  assert.deepEqual(violations, [], 'CSP violations on /device')
  await tab.close()

  await page.locator('keyless-login[status="signed_in"]').waitFor({ timeout: 30000 })
  assert.equal(await page.evaluate(() => document.querySelector('keyless-login').session.subject), 'corp:alice')
  const before = echo.hits.length
  const res = await page.evaluate(async (url) => {
    const r = await document.querySelector('keyless-login').fetch(url + '/v1/things')
    return { status: r.status, body: await r.text() }
  }, stack.proxy)
  assert.equal(res.status, 200, res.body)
  assert.equal(echo.hits.length, before + 1)
  assert.equal(echo.hits.at(-1).headers['x-keyless-sub'], 'corp:alice')
  await ctx.close()
})
