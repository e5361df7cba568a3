// The Worker following the issuer's revocation log through its feed (the
// endpoint and shared secret `keyless proxy --feed-secret-file` uses), in
// real workerd (wrangler dev, local mode) against the loopback issuer's
// real bolt log and revfeed handler. Outside the push-and-snapshot and
// sweep rows nothing here pushes to the Worker: what it refuses it learned
// from the feed.
// Run: node --test --test-concurrency=1 sidecar/edge/test/feed.test.mjs
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { mkdir } from 'node:fs/promises'
import { build, startIssuer, writeWranglerConfig, startWorker, tempDir, revokeToken, storedKeys } from './world.mjs'
import { newKey, mint, send, wwwAuthError, publicURL } from './client.mjs'
import { generateProof } from 'dpop'

// The Worker polls at most every INTERVAL_MS and answers 503 once it has
// had no answer from the feed for MAX_STALE_MS; one poll waits at most
// FEED_TIMEOUT_MS (worker.mjs).
const INTERVAL_MS = 500
const MAX_STALE_MS = 3000
const FEED_TIMEOUT_MS = 1000

let tmp, world, configFile, worker, client

before(async () => {
  tmp = await tempDir()
  const bin = build(tmp.dir)
  world = await startIssuer(bin)
  configFile = await writeWranglerConfig(tmp.dir, world.config, {
    KEYLESS_REVOCATION_FEED: world.feed,
    KEYLESS_REVOCATION_FEED_SECRET: world.feed_secret,
    KEYLESS_REVOCATION_FEED_INTERVAL: INTERVAL_MS + 'ms',
    KEYLESS_REVOCATION_FEED_MAX_STALE: MAX_STALE_MS + 'ms',
  })
  worker = await startWorker(configFile, join(tmp.dir, 'state'))
  client = await newKey()
}, { timeout: 180000 })

after(async () => {
  await fetch(world?.issuer + '/feed/up', { method: 'POST' }).catch(() => {})
  await worker?.stop()
  world?.close()
  await tmp?.remove()
})

/** A request with a fresh proof for tok; resolves to { status, body, headers }. */
async function get(tok) {
  const proof = await generateProof(client.kp, publicURL + '/v1/orders', 'GET', undefined, tok)
  return send(worker.url, { method: 'GET', path: '/v1/orders', headers: [['Authorization', 'DPoP ' + tok], ['DPoP', proof]] })
}

async function logRevoke(r) {
  const res = await fetch(world.issuer + '/log/revoke', { method: 'POST', body: JSON.stringify(r) })
  assert.equal(res.status, 204, await res.text())
}

async function feed(state) {
  assert.equal((await fetch(world.issuer + '/feed/' + state, { method: 'POST' })).status, 204)
}

/**
 * Sends requests for tok until one answers want, at most deadlineMs; returns
 * the statuses seen, in order (bounded: it stops by itself).
 */
async function until(tok, want, deadlineMs) {
  const seen = []
  const end = Date.now() + deadlineMs
  while (Date.now() < end) {
    const res = await get(tok)
    seen.push(res.status)
    if (res.status === want) return { seen, res }
    await new Promise((r) => setTimeout(r, 100))
  }
  return { seen, res: null }
}

test('a revocation written only to the issuer\'s log (no push) is refused at the edge within the poll interval', async () => {
  const lease = 'lease-feed-' + Math.random().toString(36).slice(2)
  const tok = await mint(world, { scope: ['orders:read'], jkt: client.jkt, lease_id: lease })
  const first = await get(tok)
  assert.equal(first.status, 200, first.body)
  const t0 = Date.now()
  await logRevoke({ kind: 'lease', value: lease, until: Math.floor(Date.now() / 1000) + 3600 })
  const { seen, res } = await until(tok, 401, INTERVAL_MS + FEED_TIMEOUT_MS + 2000)
  assert.ok(res, `never refused; statuses ${seen}`)
  assert.equal(wwwAuthError(res), 'invalid_token')
  // Every answer before the refusal was the pass it was before: no 503.
  assert.deepEqual(seen.slice(0, -1).filter((s) => s !== 200), [])
  assert.ok(Date.now() - t0 < INTERVAL_MS + FEED_TIMEOUT_MS + 1000, `refused after ${Date.now() - t0} ms`)
  // Another lease of the same subject is untouched.
  const other = await mint(world, { scope: ['orders:read'], jkt: client.jkt })
  assert.equal((await get(other)).status, 200)
})

test('a subject watermark from the log applies with the cutoff rule at the edge', async () => {
  const sub = 'feed-wm-' + Math.random().toString(36).slice(2)
  const older = await mint(world, { sub, scope: ['orders:read'], jkt: client.jkt, issued_ago_s: 20 })
  const newer = await mint(world, { sub, scope: ['orders:read'], jkt: client.jkt })
  const cutoff = Math.floor(Date.now() / 1000) - 10
  await logRevoke({ kind: 'sub', value: sub, until: cutoff + 8 * 24 * 3600 })
  const { seen, res } = await until(older, 401, INTERVAL_MS + FEED_TIMEOUT_MS + 2000)
  assert.ok(res, `never refused; statuses ${seen}`)
  assert.equal((await get(newer)).status, 200)
})

async function push(r) {
  const res = await fetch(worker.url + '/.keyless/revocations', {
    method: 'POST', headers: { Authorization: 'Bearer ' + revokeToken }, body: JSON.stringify(r),
  })
  assert.equal(res.status, 204, await res.text())
}

/** Makes the helper answer the next poll with a snapshot; resolves once it did (bounded). */
async function snapshot() {
  const served = async () => Number(await (await fetch(world.issuer + '/feed/snapshots')).text())
  const before = await served()
  await feed('snapshot')
  const end = Date.now() + INTERVAL_MS + FEED_TIMEOUT_MS + 5000
  while (await served() === before) {
    assert.ok(Date.now() < end, 'the Worker never polled the snapshot')
    // A request makes the due poll (the Worker polls from the request path).
    await get(await mint(world, { scope: ['orders:read'], jkt: client.jkt }))
    await new Promise((r) => setTimeout(r, 100))
  }
}

test('a pushed revocation the log does not hold survives a feed snapshot', async () => {
  const lease = 'lease-pushed-' + Math.random().toString(36).slice(2)
  const tok = await mint(world, { scope: ['orders:read'], jkt: client.jkt, lease_id: lease })
  assert.equal((await get(tok)).status, 200)
  await push({ kind: 'lease', value: lease, until: Math.floor(Date.now() / 1000) + 3600 })
  let res = await get(tok)
  assert.equal(res.status, 401, res.body)
  // The issuer's log never heard of it: a snapshot lacks it.
  await snapshot()
  res = await get(tok)
  assert.equal(res.status, 401, res.body)
  assert.equal(wwwAuthError(res), 'invalid_token')
  // The feed's own revocations are still applied after the snapshot.
  const logged = 'lease-logged-' + Math.random().toString(36).slice(2)
  const tok2 = await mint(world, { scope: ['orders:read'], jkt: client.jkt, lease_id: logged })
  await logRevoke({ kind: 'lease', value: logged, until: Math.floor(Date.now() / 1000) + 3600 })
  const { seen, res: refused } = await until(tok2, 401, INTERVAL_MS + FEED_TIMEOUT_MS + 2000)
  assert.ok(refused, `never refused; statuses ${seen}`)
})

test('an alarm deletes revocations (pushed and from the feed) once their until has passed, and keeps the rest', async () => {
  const state = join(tmp.dir, 'state')
  const id = Math.random().toString(36).slice(2)
  const soon = Math.floor(Date.now() / 1000) + 2
  const later = soon + 3600
  await push({ kind: 'lease', value: 'sweep-push-' + id, until: soon })
  await push({ kind: 'lease', value: 'keep-push-' + id, until: later })
  await logRevoke({ kind: 'lease', value: 'sweep-log-' + id, until: soon })
  await logRevoke({ kind: 'lease', value: 'keep-log-' + id, until: later })
  const mine = async () => [...await storedKeys(state, 'RevocationList', 'push:'), ...await storedKeys(state, 'RevocationList', 'rev:')]
    .filter((k) => k.endsWith(id)).sort()
  const all = [`push:lease:keep-push-${id}`, `push:lease:sweep-push-${id}`, `rev:lease:keep-log-${id}`, `rev:lease:sweep-log-${id}`]
  // Stored first (a request makes the Worker poll the log)...
  let got = []
  for (const end = Date.now() + INTERVAL_MS + FEED_TIMEOUT_MS + 3000; Date.now() < end;) {
    await get(await mint(world, { scope: ['orders:read'], jkt: client.jkt }))
    got = await mine()
    if (got.length === 4) break
    await new Promise((r) => setTimeout(r, 100))
  }
  assert.deepEqual(got, all)
  // ...then gone a little after until (the alarm fires at until + 1 s),
  // with nothing asking for them meanwhile.
  for (const end = soon * 1000 + 8000; Date.now() < end;) {
    got = await mine()
    if (got.length === 2) break
    await new Promise((r) => setTimeout(r, 250))
  }
  assert.deepEqual(got, [`push:lease:keep-push-${id}`, `rev:lease:keep-log-${id}`])
})

test('cut off from the feed longer than the bound: 503, never a pass; service resumes and catches up when the issuer answers again', async () => {
  const lease = 'lease-cut-' + Math.random().toString(36).slice(2)
  const tok = await mint(world, { scope: ['orders:read'], jkt: client.jkt, lease_id: lease })
  assert.equal((await get(tok)).status, 200)
  await feed('down')
  const t0 = Date.now()
  try {
    // Revoked while the Worker cannot hear of it.
    await logRevoke({ kind: 'lease', value: lease, until: Math.floor(Date.now() / 1000) + 3600 })
    const { seen, res } = await until(tok, 503, MAX_STALE_MS + INTERVAL_MS + FEED_TIMEOUT_MS + 3000)
    assert.ok(res, `never 503; statuses ${seen}`)
    // Until the bound the Worker answers from its copy (200); past it, 503.
    assert.deepEqual(seen.slice(0, -1).filter((s) => s !== 200), [])
    assert.ok(Date.now() - t0 >= MAX_STALE_MS - INTERVAL_MS, `503 after only ${Date.now() - t0} ms`)
    assert.equal(JSON.parse(res.body).error, 'temporarily_unavailable')
    // Not a leak: the reason stays in the Worker's log.
    assert.doesNotMatch(res.body, /secret|Bearer/)
    // Still cut off: still 503, for a lease nobody revoked too.
    const other = await mint(world, { scope: ['orders:read'], jkt: client.jkt })
    assert.equal((await get(other)).status, 503)
  } finally {
    await feed('up')
  }
  // The issuer answers again: the Worker resumes after its last sequence
  // number, so the revocation made while it was cut off is refused.
  const { seen, res } = await until(tok, 401, INTERVAL_MS + FEED_TIMEOUT_MS + 3000)
  assert.ok(res, `never refused after the feed came back; statuses ${seen}`)
  assert.deepEqual(seen.filter((s) => s !== 503 && s !== 401), [])
  const other = await mint(world, { scope: ['orders:read'], jkt: client.jkt })
  assert.equal((await get(other)).status, 200)
})

test('a slow issuer never holds a request longer than one poll\'s timeout; past the bound, 503', async () => {
  const tok = await mint(world, { scope: ['orders:read'], jkt: client.jkt })
  assert.equal((await get(tok)).status, 200)
  await feed('slow') // the helper answers nothing for 30 s
  try {
    const seen = []
    const end = Date.now() + MAX_STALE_MS + INTERVAL_MS + FEED_TIMEOUT_MS + 3000
    while (Date.now() < end) {
      const t = Date.now()
      const res = await get(tok)
      // Far below the issuer's 30 s: the poll gave up after its timeout.
      assert.ok(Date.now() - t < FEED_TIMEOUT_MS + 4000, `a request took ${Date.now() - t} ms`)
      seen.push(res.status)
      if (res.status === 503) break
    }
    assert.equal(seen.at(-1), 503, `never 503; statuses ${seen}`)
    assert.deepEqual(seen.slice(0, -1).filter((s) => s !== 200), [])
  } finally {
    await feed('up')
  }
  const { seen, res } = await until(tok, 200, INTERVAL_MS + FEED_TIMEOUT_MS + 3000)
  assert.ok(res, `never served again; statuses ${seen}`)
})

test('after a Worker restart the Durable Object resumes from its sequence number and catches up on what it missed', async () => {
  const lease = 'lease-restart-' + Math.random().toString(36).slice(2)
  const tok = await mint(world, { scope: ['orders:read'], jkt: client.jkt, lease_id: lease })
  assert.equal((await get(tok)).status, 200)
  await worker.stop()
  await logRevoke({ kind: 'lease', value: lease, until: Math.floor(Date.now() / 1000) + 3600 })
  worker = await startWorker(configFile, join(tmp.dir, 'state'))
  const res = await get(tok)
  assert.equal(res.status, 401, res.body)
  assert.equal(wwwAuthError(res), 'invalid_token')
})

test('a Worker whose feed secret the issuer refuses never had contact: 503 from the first request, never a pass', async () => {
  const dir = join(tmp.dir, 'wrong-secret')
  await mkdir(dir)
  const file = await writeWranglerConfig(dir, world.config, {
    KEYLESS_REVOCATION_FEED: world.feed,
    KEYLESS_REVOCATION_FEED_SECRET: 'wrong-' + world.feed_secret,
    KEYLESS_REVOCATION_FEED_INTERVAL: INTERVAL_MS + 'ms',
    KEYLESS_REVOCATION_FEED_MAX_STALE: MAX_STALE_MS + 'ms',
  })
  const w = await startWorker(file, join(dir, 'state'))
  try {
    const tok = await mint(world, { scope: ['orders:read'], jkt: client.jkt })
    for (let i = 0; i < 3; i++) {
      const proof = await generateProof(client.kp, publicURL + '/v1/orders', 'GET', undefined, tok)
      const res = await send(w.url, { method: 'GET', path: '/v1/orders', headers: [['Authorization', 'DPoP ' + tok], ['DPoP', proof]] })
      assert.equal(res.status, 503, res.body)
      assert.equal(JSON.parse(res.body).error, 'temporarily_unavailable')
    }
    // The Worker's own log lines never carry the secret (wrangler's banner
    // lists the test's vars, which stand in for secrets: left out).
    const own = w.log().split('\n').filter((l) => !l.startsWith('env.')).join('\n')
    assert.doesNotMatch(own, new RegExp(world.feed_secret))
  } finally {
    await w.stop()
  }
})
