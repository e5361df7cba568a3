// Browser benchmark for `make bench` (not a test): in real headless
// Chromium against `keyless dev`, measures the time from navigation to the
// WASM client being ready, from pressing Sign in to the QR code on screen,
// and the client's cost per DPoP proof (WebCrypto signing from Go).
// Bounded: a few page loads and 200 proofs.
import { startEcho, startStatic, startKeyless, launchChromium, embedPage } from './harness.mjs'

const runs = Number(process.env.BENCH_RUNS || 5)
const echo = await startEcho()
let stack
const site = await startStatic({ '/index.html': () => ({ body: embedPage(stack) }) })
stack = await startKeyless({ upstream: echo.url, extraArgs: ['--allow-origin', site.url] })
const browser = await launchChromium()
const ready = [], qr = [], total = []
let perProof
try {
  for (let i = 0; i < runs; i++) {
    const ctx = await browser.newContext()
    const page = await ctx.newPage()
    await page.goto(site.url + '/index.html')
    const r = await page.evaluate(async () => {
      const { loadClient } = await import('/web-component/keyless.js')
      await loadClient()
      const readyAt = performance.now()
      const el = document.querySelector('keyless-login')
      const t0 = performance.now()
      el.shadowRoot.querySelector('button[part~="sign-in"]').click()
      const img = el.shadowRoot.querySelector('img.qr')
      await new Promise((ok) => {
        const code = el.shadowRoot.querySelector('.code')
        const check = () => (img.complete && img.naturalWidth > 0 && code.textContent && img.checkVisibility() ? ok() : setTimeout(check, 1))
        check()
      })
      const t1 = performance.now()
      return { ready: readyAt, qr: t1 - t0, total: t1 }
    })
    ready.push(r.ready); qr.push(r.qr); total.push(r.total)
    if (i === 0) perProof = await page.evaluate(() => globalThis.keyless.measureProofs(200))
    await ctx.close()
  }
} finally {
  await browser.close()
  await stack.stop()
  site.close()
  echo.close()
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]
console.log(`browser (Chromium, ${runs} page loads, median):`)
console.log(`  navigation -> client ready   ${med(ready).toFixed(1)} ms`)
console.log(`  Sign in -> QR on screen      ${med(qr).toFixed(1)} ms   (target < 300 ms)`)
console.log(`  navigation -> QR on screen   ${med(total).toFixed(1)} ms`)
console.log(`  per DPoP proof (WebCrypto)   ${perProof.toFixed(3)} ms   (target < 0.5 ms)`)
