// <keyless-login> signing in at an external OpenID Provider (npm
// oidc-provider, the harness in sidecar/internal/idptest) in real headless
// Chromium: the IdP's device flow, the exchange of its token at keyless's
// vending service (vending attribute), then the API through `keyless
// proxy`, whose upstream sees the IdP's subject and issuer name. Once with
// an IdP that does DPoP (its token bound to the page's key) and once with
// one that does not (a Bearer token, exchanged once); and an IdP whose
// endpoints refuse the page's origin (idp_cors).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startEcho, startStatic, startKeyless, launchChromium, root } from './harness.mjs'

/** Starts oidc-provider with env; resolves with {issuer, stop}. */
async function startIdP(env) {
  const proc = spawn(process.execPath, [join(root, 'sidecar', 'internal', 'idptest', 'oidc-provider.mjs')],
    { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NODE_NO_WARNINGS: '1', ...env } })
  let err = ''
  proc.stderr.on('data', (c) => { err += c })
  const line = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`oidc-provider did not start:\n${err}`)), 20000)
    createInterface({ input: proc.stdout }).once('line', (l) => { clearTimeout(timer); resolve(l) })
    proc.on('exit', (code) => reject(new Error(`oidc-provider exited ${code}:\n${err}`)))
  })
  const { issuer } = JSON.parse(line)
  return {
    issuer,
    async stop() {
      proc.stdin.end() // the script exits when stdin closes
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.on('exit', r)))
    },
  }
}

let echo, site, stack, browser, idpDPoP, idpBearer, idpNoCORS, cfgDir

const pageFor = (idp) => () => ({
  body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>keyless federated</title>
<script type="module" src="/web-component/keyless.js"></script></head>
<body><keyless-login issuer="${idp.issuer}" client-id="demo-app" scope="api:read" idp-scope="openid email groups"
 vending="${stack.issuer}" api="${stack.proxy}"></keyless-login></body></html>`,
})

before(async () => {
  echo = await startEcho()
  site = await startStatic({
    '/dpop.html': () => pageFor(idpDPoP)(),
    '/bearer.html': () => pageFor(idpBearer)(),
    '/nocors.html': () => pageFor(idpNoCORS)(),
  })
  ;[idpDPoP, idpBearer, idpNoCORS] = await Promise.all([
    startIdP({ IDPTEST_CORS_ORIGINS: site.url }),
    startIdP({ IDPTEST_CORS_ORIGINS: site.url, IDPTEST_DPOP: 'off' }),
    startIdP({}),
  ])
  // keyless trusts both IdPs' tokens (JWT access tokens for urn:keyless);
  // the policy lets their "ops" group (ops-team at the IdP) read.
  const issuer = (name, url) => `    - name: ${name}
      issuer: ${url}
      audience: [urn:keyless, demo-app]
      ignore_scope: true
      groups_claim: groups
      group_map: {ops-team: [ops]}`
  const cfg = `clients:
  - id: demo-app
    scopes: [api:read]
    default_scopes: [api:read]
vending:
  issuers:
${issuer('corp', idpDPoP.issuer)}
${issuer('corp-bearer', idpBearer.issuer)}
policy:
  apps:
    demo-app:
      scopes:
        api:read: read
      rules:
        - name: idp-ops-read
          issuer: "*"
          groups: [ops]
          scopes: [api:read]
`
  cfgDir = await mkdtemp(join(tmpdir(), 'keyless-fed-'))
  await writeFile(join(cfgDir, 'keyless.yaml'), cfg, { mode: 0o600 })
  stack = await startKeyless({ upstream: echo.url, config: join(cfgDir, 'keyless.yaml'), extraArgs: ['--allow-origin', site.url] })
  browser = await launchChromium()
})

after(async () => {
  await browser?.close()
  await stack?.stop()
  await Promise.all([idpDPoP?.stop(), idpBearer?.stop(), idpNoCORS?.stop()])
  site?.close()
  echo?.close()
  if (cfgDir) await rm(cfgDir, { recursive: true, force: true })
})

/**
 * Signs in at idp through the component on page path; approves at the
 * IdP's own device pages in a second tab. Returns what the page saw of the
 * IdP's token endpoint.
 */
async function signIn(ctx, idp, path) {
  const page = await ctx.newPage()
  const idpToken = []
  page.on('response', async (r) => {
    if (r.url().startsWith(idp.issuer) && r.url().includes('/token') && r.request().method() === 'POST' && r.status() === 200) {
      idpToken.push({ dpop: r.request().headers().dpop !== undefined, body: await r.json() })
    }
  })
  await page.goto(site.url + path)
  await page.locator('keyless-login button[part~="sign-in"]').click()
  const link = page.locator('keyless-login a[part="link"]')
  await page.locator('keyless-login .code').waitFor({ state: 'visible', timeout: 20000 })
  const href = await link.getAttribute('href')
  assert.ok(href.startsWith(idp.issuer + '/'), `verification link ${href} is the IdP's`)

  // The user approves at the IdP (its own pages; the harness signs alice in).
  const tab = await ctx.newPage()
  await tab.goto(href, { waitUntil: 'domcontentloaded' })
  // The code entry page (when the link does not skip it), then the
  // confirmation page: at most three submits, then the success page.
  const success = tab.getByText('Sign-in Success')
  for (let i = 0; i < 3 && !(await success.isVisible()); i++) {
    await Promise.all([tab.waitForNavigation({ waitUntil: 'domcontentloaded' }),
      tab.locator('button[autofocus], [type="submit"]').first().click()])
  }
  await success.waitFor({ timeout: 20000 })
  await tab.close()

  await page.locator('keyless-login[status="signed_in"]').waitFor({ timeout: 30000 })
  return { page, idpToken }
}

/** Calls the API through the proxy from the page; returns status and the upstream's view. */
async function callAPI(page) {
  const before = echo.hits.length
  const res = await page.evaluate(async (url) => {
    const r = await document.querySelector('keyless-login').fetch(url + '/v1/things')
    return { status: r.status, body: await r.text() }
  }, stack.proxy)
  return { ...res, hit: echo.hits.length > before ? echo.hits.at(-1) : null }
}

for (const [name, path, idpName, tokenType] of [
  ['DPoP-bound IdP token', '/dpop.html', 'corp', 'DPoP'],
  ['bearer IdP token', '/bearer.html', 'corp-bearer', 'Bearer'],
]) {
  test(`sign in at oidc-provider with a ${name}, lease from vending, API through the proxy`, async () => {
    const ctx = await browser.newContext()
    const idp = idpName === 'corp' ? idpDPoP : idpBearer
    const { page, idpToken } = await signIn(ctx, idp, path)
    assert.equal(idpToken.length, 1, 'one token response from the IdP')
    assert.equal(idpToken[0].body.token_type, tokenType)
    assert.equal(idpToken[0].dpop, tokenType === 'DPoP', 'a DPoP proof is sent to the IdP only when it does DPoP')
    const session = await page.evaluate(() => document.querySelector('keyless-login').session)
    assert.equal(session.subject, 'alice')

    const { status, body, hit } = await callAPI(page)
    assert.equal(status, 200, body)
    assert.ok(hit, 'the upstream was called')
    assert.equal(hit.headers['x-keyless-sub'], 'alice')
    assert.equal(hit.headers['x-keyless-issuer'], idpName)
    assert.equal(hit.headers.authorization, undefined)

    // The IdP's token is nowhere in the page's storage; only the lease is used.
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }))
    assert.ok(!stored.includes(idpToken[0].body.access_token), 'IdP token in web storage')
    await ctx.close()
  })
}

test('an IdP whose endpoints refuse the page origin (no CORS) says idp_cors', async () => {
  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  await page.goto(site.url + '/nocors.html')
  await page.evaluate(() => {
    window.__errors = []
    document.addEventListener('keyless-error', (e) => window.__errors.push(e.detail))
  })
  await page.locator('keyless-login button[part~="sign-in"]').click()
  await page.locator('keyless-login[status="error"]').waitFor({ timeout: 20000 })
  const errors = await page.evaluate(() => window.__errors)
  assert.equal(errors.at(-1)?.code, 'idp_cors', JSON.stringify(errors))
  assert.match(errors.at(-1).message, /\/device/, 'the message points to sign-in through keyless')
  await ctx.close()
})
