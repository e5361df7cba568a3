// `keyless new app` as a newcomer runs it: from a clean directory, with
// bin/keyless on PATH, run exactly the commands it prints, open the URL it
// prints in headless Chromium, sign in on a second context as a phone with
// the printed password, and call the API. Needs `make build wasm` (the
// issuer serves the component from the checkout's web-component/).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { promisify } from 'node:util'
import { keylessBin, launchChromium } from './harness.mjs'

const sh = promisify(execFile)
let tmp, dev, browser

after(async () => {
  await browser?.close()
  if (dev && dev.exitCode === null) {
    process.kill(-dev.pid, 'SIGTERM')
    await new Promise((r) => dev.on('exit', r))
  }
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

/** A free loopback port (the literal defaults may be taken by another run). */
async function freePort() {
  const s = createServer()
  await new Promise((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address()
  await new Promise((r) => s.close(r))
  return port
}

test('keyless new app: the printed commands run the app, sign in works, the API answers', async () => {
  tmp = await mkdtemp(join(tmpdir(), 'keyless-newapp-'))
  const env = { ...process.env, PATH: `${dirname(keylessBin)}:${process.env.PATH}` }
  const [ip, pp, ap] = [await freePort(), await freePort(), await freePort()]
  const { stdout } = await sh('keyless', ['new', 'app', 'myapp', '--issuer', `http://127.0.0.1:${ip}`,
    '--api', `http://127.0.0.1:${pp}`, '--origin', `http://127.0.0.1:${ap}`], { cwd: tmp, env })

  const commands = stdout.split('\n').filter((l) => l.startsWith('  keyless ')).map((l) => l.trim())
  const [, url, user, password] = /then open (\S+) and sign in as (\S+), password (\S+)/.exec(stdout) || []
  assert.ok(commands.length === 2 && url, `no commands to follow in:\n${stdout}`)
  assert.match(commands[1], /^keyless dev /)

  // Each printed command, literally, through the shell.
  const test1 = await sh('sh', ['-c', commands[0]], { cwd: tmp, env })
  assert.match(test1.stdout, /policy tests passed/)
  dev = spawn('sh', ['-c', `exec ${commands[1]}`], { cwd: tmp, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  dev.stdout.on('data', (c) => { out += c })
  dev.stderr.on('data', (c) => { out += c })
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`keyless dev did not start:\n${out}`)), 20000)
    dev.stdout.on('data', () => { if (/Proxy:/.test(out)) { clearTimeout(timer); resolve() } })
    dev.on('exit', (c) => { clearTimeout(timer); reject(new Error(`keyless dev exited ${c}:\n${out}`)) })
  })
  assert.doesNotMatch(out, /WARNING/, 'keyless dev found no component to serve')

  browser = await launchChromium()
  const desk = await browser.newContext()
  const page = await desk.newPage()
  const problems = []
  page.on('console', (m) => {
    // RFC 8628 section 3.5: authorization_pending is a 400 from the token
    // endpoint, which Chromium logs; anything else (a 404 favicon, a CSP
    // refusal, a panic) is a problem.
    if (m.type() === 'error' && !(m.location().url === `http://127.0.0.1:${ip}/token` && /status of 400/.test(m.text()))) {
      problems.push(`${m.text()} (${m.location().url})`)
    }
  })
  page.on('pageerror', (e) => problems.push(String(e)))
  await page.goto(url)
  // A blank page (the component not loaded) has no Sign in button.
  await page.locator('keyless-login button[part~="sign-in"]').waitFor({ timeout: 20000 })
  await page.locator('keyless-login button[part~="sign-in"]').click()
  await page.waitForFunction(() => /^[A-Z]{4}-[A-Z]{4}$/.test(document.querySelector('keyless-login')?.shadowRoot.querySelector('.code')?.textContent || ''), null, { timeout: 20000 })
  const link = await page.locator('keyless-login a[part="link"]').getAttribute('href')

  const phone = await browser.newContext({ isMobile: true, hasTouch: true })
  const ph = await phone.newPage()
  await ph.goto(link)
  await ph.fill('#username', user)
  await ph.fill('#password', password)
  await ph.getByRole('button', { name: 'Sign in and approve' }).click()
  await ph.getByRole('status').waitFor()
  await phone.close()

  await page.locator('keyless-login[status="signed_in"]').waitFor({ timeout: 20000 })
  await page.locator('#call').click()
  await page.locator('#result').waitFor({ state: 'visible', timeout: 10000 })
  const result = JSON.parse(await page.locator('#result').textContent())
  assert.equal(result.subject, user)
  assert.equal(result.client, 'myapp')
  assert.equal(result.saw_authorization, false, 'the upstream saw the caller\'s credentials')
  assert.deepEqual(problems, [])
})
