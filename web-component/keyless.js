// <keyless-login>: sign in with the OAuth 2.0 device flow and call APIs with
// short-lived, DPoP-bound leases. No secret ever lives in the page.
//
//   <script type="module" src="https://auth.example/keyless.js"></script>
//   <keyless-login issuer="https://auth.example" client-id="my-app"
//                  scope="api:read" api="https://api.example"></keyless-login>
//
// One ES module, no dependencies, no build step. The Go client
// (keyless.wasm, with wasm_exec.js from the Go toolchain) is loaded once per
// page from beside this file. Everything is rendered with textContent and
// constructable stylesheets, so the component works under a strict CSP:
//   script-src 'self' <issuer, when the assets come from it> 'wasm-unsafe-eval';
//   img-src 'self' data:; connect-src 'self' <issuer> <api>
// (see web-component/README.md, which tests both hosting choices).

/** @typedef {import('./keyless-wasm').KeylessAPI} KeylessAPI */

let base = new URL('.', import.meta.url)

/**
 * Tells the component where keyless.wasm and wasm_exec.js are: the URL of
 * the directory holding both. By default they are beside this module,
 * which is right when the module is served as is; a bundler (esbuild,
 * Vite, webpack) moves the module into its bundle, so copy the two files
 * from the package to a directory of your site and name it here before
 * the first <keyless-login> signs in. The `wasm` attribute still wins for
 * keyless.wasm.
 * @param {string | URL} url e.g. '/assets/keyless/'
 */
export function setAssetsBase(url) {
  const u = new URL(url, document.baseURI)
  if (!u.pathname.endsWith('/')) u.pathname += '/'
  base = u
}

/** @type {Promise<KeylessAPI> | undefined} */
let booting

/** @type {Map<string, Promise<WebAssembly.Module>>} */
const compiling = new Map()

/**
 * Fetches and compiles keyless.wasm once per URL, streaming: compilation
 * runs while the bytes arrive (compressed by the issuer), so by the time
 * the user presses Sign in the module is usually ready. The element calls
 * it when it connects (unless preload="none").
 * @param {string | URL} [wasmURL]
 * @returns {Promise<WebAssembly.Module>}
 */
export function compileClient(wasmURL = new URL('keyless.wasm', base)) {
  const key = String(wasmURL)
  let p = compiling.get(key)
  if (!p) {
    p = (async () => {
      try {
        return await WebAssembly.compileStreaming(fetch(wasmURL, { credentials: 'omit' }))
      } catch {
        // A static host that serves .wasm with the wrong MIME type makes
        // compileStreaming fail; fall back to bytes.
        const bytes = await (await fetch(wasmURL, { credentials: 'omit' })).arrayBuffer()
        return WebAssembly.compile(bytes)
      }
    })()
    p.catch(() => compiling.delete(key)) // a failed download may be retried
    compiling.set(key, p)
  }
  return p
}

const ecdsa = { name: 'ECDSA', hash: 'SHA-256' }
const ascii = new TextDecoder()

/** base64url without padding (RFC 7515 section 2) of bytes. */
function b64url(buf) {
  let s = ''
  for (const b of new Uint8Array(buf)) s += String.fromCharCode(b)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/**
 * Finishes a DPoP proof (RFC 9449 section 4.2) whose signing input the Go
 * client built (proof.SigningInput): signs the bytes with the
 * non-extractable key and appends the signature. WebCrypto's ECDSA
 * signature is raw r||s, the JWS form (RFC 7518 section 3.4).
 * @param {CryptoKey} key
 * @param {Uint8Array} input
 */
async function finishProof(key, input) {
  let sig
  try {
    sig = await crypto.subtle.sign(ecdsa, key, input)
  } catch (e) {
    throw new Error('keyless: signing failed: ' + (e && e.name))
  }
  if (sig.byteLength !== 64) throw new Error('keyless: unexpected ECDSA signature length')
  return ascii.decode(input) + '.' + b64url(sig)
}

/**
 * The client's JavaScript half, handed to the Go module when it starts
 * (wasm/fetch_js.go). Waiting for a Promise in Go costs a callback and a
 * goroutine wake-up, more than a whole proof, so the steps of a request
 * (sign the proof, fetch, read the body) are chained here and Go waits once.
 */
const helpers = {
  /**
   * @param {string} url
   * @param {RequestInit & { headers: Headers }} init
   * @param {CryptoKey | null} key signs input into the DPoP header when set
   * @param {Uint8Array | null} input
   */
  async fetch(url, init, key, input) {
    if (key) init.headers.set('DPoP', await finishProof(key, input))
    let resp
    try {
      resp = await fetch(url, init)
    } catch (e) {
      throw new Error('keyless: network error: ' + (e && e.message))
    }
    const body = new Uint8Array(await resp.arrayBuffer())
    /** @type {string[]} */
    const headers = []
    resp.headers.forEach((value, name) => headers.push(name, value))
    return { status: resp.status, headers, body }
  },
  /**
   * n proofs as a request makes them, each timed from building its input
   * (build, a call into Go) to the finished proof (keyless.measureProofs).
   * @param {number} n
   * @param {CryptoKey} key
   * @param {() => Uint8Array} build
   */
  async measureProofs(n, key, build) {
    const times = []
    let proof = ''
    for (let i = 0; i < n; i++) {
      const t0 = performance.now()
      proof = await finishProof(key, build())
      times.push(performance.now() - t0)
    }
    return { times, proof }
  },
}

/**
 * Boots the WebAssembly client once per page and resolves with its API
 * (globalThis.keyless). A Go program that returns has crashed: the promise
 * for later calls is reset so a new boot can be tried.
 * @param {string | URL} [wasmURL]
 * @returns {Promise<KeylessAPI>}
 */
export function loadClient(wasmURL = new URL('keyless.wasm', base)) {
  if (booting) return booting
  booting = (async () => {
    const [module] = await Promise.all([
      compileClient(wasmURL),
      globalThis.Go ? null : import(new URL('wasm_exec.js', base).href),
    ])
    const go = new globalThis.Go()
    const ready = new Promise((resolve) => {
      // The module calls this once it has installed its API, and keeps
      // what it returns: its JavaScript half.
      globalThis.__keylessReady = (api) => { resolve(api); return helpers }
    })
    const instance = await WebAssembly.instantiate(module, go.importObject)
    go.run(instance).then(() => {
      booting = undefined
      document.dispatchEvent(new CustomEvent('keyless-error', { detail: { code: 'crashed', message: 'keyless client stopped' } }))
    })
    return ready
  })()
  booting.catch(() => { booting = undefined })
  return booting
}

/**
 * Reports whether IndexedDB holds a renewal token kept for this issuer and
 * app (stored by the Go client under "renewal|dpop|ISSUER|CLIENT"), without
 * creating the database when it does not exist: an upgrade here is aborted,
 * so the Go client later creates it with its object store.
 * @param {string} issuer @param {string} clientId @returns {Promise<boolean>}
 */
async function keptRenewal(issuer, clientId) {
  try {
    const db = await new Promise((resolve, reject) => {
      const req = indexedDB.open('keyless')
      req.onupgradeneeded = () => req.transaction.abort()
      req.onsuccess = () => resolve(req.result)
      req.onerror = () => reject(req.error)
    })
    try {
      if (!db.objectStoreNames.contains('keys')) return false
      const got = await new Promise((resolve, reject) => {
        const r = db.transaction('keys').objectStore('keys').get(`renewal|dpop|${issuer}|${clientId}`)
        r.onsuccess = () => resolve(r.result)
        r.onerror = () => reject(r.error)
      })
      return typeof got === 'string' && got !== ''
    } finally {
      db.close()
    }
  } catch {
    return false // no IndexedDB here (sandboxed iframe), or none yet
  }
}

const css = `
:host {
  --keyless-accent: #3b5bdb;
  --keyless-accent-fg: #fff;
  --keyless-bg: #fff;
  --keyless-fg: #1f2328;
  --keyless-muted: #57606a;
  --keyless-border: #d0d7de;
  --keyless-danger: #b42318;
  --keyless-radius: 10px;
  --keyless-font: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  display: inline-block;
  font-family: var(--keyless-font);
  color: var(--keyless-fg);
}
@media (prefers-color-scheme: dark) {
  :host {
    --keyless-accent: #7c9cff;
    --keyless-accent-fg: #0b1020;
    --keyless-bg: #161b22;
    --keyless-fg: #e6edf3;
    --keyless-muted: #9da7b3;
    --keyless-border: #30363d;
    --keyless-danger: #ff7b72;
  }
}
:host([theme="light"]) { color-scheme: light; }
:host([theme="dark"]) {
  --keyless-accent: #7c9cff; --keyless-accent-fg: #0b1020; --keyless-bg: #161b22;
  --keyless-fg: #e6edf3; --keyless-muted: #9da7b3; --keyless-border: #30363d; --keyless-danger: #ff7b72;
}
.card {
  background: var(--keyless-bg);
  border: 1px solid var(--keyless-border);
  border-radius: var(--keyless-radius);
  padding: 16px 20px;
  min-width: 260px;
  max-width: 360px;
  box-sizing: border-box;
}
button {
  font: inherit; font-weight: 600;
  background: var(--keyless-accent); color: var(--keyless-accent-fg);
  border: 0; border-radius: calc(var(--keyless-radius) - 4px);
  padding: 10px 16px; cursor: pointer;
}
button.secondary { background: transparent; color: var(--keyless-accent); border: 1px solid var(--keyless-border); }
button:focus-visible, a:focus-visible { outline: 3px solid var(--keyless-accent); outline-offset: 2px; }
button[disabled] { opacity: .6; cursor: default; }
.qr { display: block; width: 192px; height: 192px; margin: 8px auto; image-rendering: pixelated; background: #fff; border-radius: 6px; }
.code {
  font: 700 2rem/1.2 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  letter-spacing: .12em; text-align: center; margin: 4px 0;
}
.row { display: flex; gap: 8px; align-items: center; justify-content: center; flex-wrap: wrap; }
.hint, .countdown { color: var(--keyless-muted); font-size: .9rem; text-align: center; margin: 6px 0; }
a { color: var(--keyless-accent); word-break: break-all; }
.status { font-size: .95rem; margin: 8px 0 0; text-align: center; min-height: 1.2em; }
.status[data-kind="error"] { color: var(--keyless-danger); }
.badge { display: inline-block; font-size: .75rem; font-weight: 700; padding: 2px 8px; border-radius: 999px;
  background: #fff3bf; color: #5c3c00; margin-left: 6px; vertical-align: middle; }
[hidden] { display: none !important; }
`

let sheet
function styles() {
  if (!sheet) {
    sheet = new CSSStyleSheet()
    sheet.replaceSync(css)
  }
  return sheet
}

/** @param {string} tag @param {Record<string,string>} [attrs] @param {(Node|string)[]} [children] */
function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v)
  for (const c of children) e.append(c)
  return e
}

const loopbackHost = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/

/**
 * The href to render for a verification URI the issuer sent, or '' when it
 * must stay plain text: only https URLs, or http to a loopback host (a
 * local `keyless dev`), become links. javascript:, data:, relative and
 * plain-http network URLs never do (RFC 8628 section 3.3.1 leaves the URI
 * to the issuer; the page must not trust it).
 * @param {unknown} uri @returns {string}
 */
export function linkHref(uri) {
  if (typeof uri !== 'string') return ''
  let u
  try { u = new URL(uri) } catch { return '' }
  if (u.protocol === 'https:' || (u.protocol === 'http:' && loopbackHost.test(u.hostname))) return u.href
  return ''
}

const messages = {
  starting: 'Starting…',
  code: 'Scan the code or open the link, then enter the code.',
  pending: 'Waiting for approval…',
  slow_down: 'Waiting for approval…',
  approved: 'Approved. Getting access…',
  // Signed in: the element already says "Signed in as alice".
  signed_in: '',
  denied: 'Sign-in was denied.',
  expired: 'The code expired. Try again.',
  error: 'Something went wrong.',
  signed_out: 'Signed out.',
  storage_unavailable: 'This page cannot store a key, so you stay signed in only until it is reloaded.',
}

/**
 * The <keyless-login> element.
 *
 * Attributes: issuer, client-id, scope, api (the origin(s) the lease may be
 * sent to, space-separated), wasm (URL of keyless.wasm), theme (light|dark).
 * With vending (keyless's URL), issuer is an external OpenID Provider: the
 * user signs in with its device flow (asking idp-scope, default "openid")
 * and its token is exchanged at vending for the lease.
 * Events (bubbling, composed): keyless-state, keyless-authenticated,
 * keyless-error, keyless-expired.
 */
export class KeylessLoginElement extends HTMLElement {
  static observedAttributes = ['issuer', 'client-id', 'scope', 'api', 'vending', 'idp-scope']

  /** Registers the element; a second registration is ignored. */
  static define(tag = 'keyless-login', registry = customElements) {
    if (!registry.get(tag)) registry.define(tag, this)
    return this
  }

  #status = 'signed_out'
  #session = null
  #timer = 0
  #deadline = 0
  #ui

  constructor() {
    super()
    const root = this.attachShadow({ mode: 'open' })
    root.adoptedStyleSheets = [styles()]
    const signIn = el('button', { part: 'button sign-in', type: 'button' }, ['Sign in'])
    const cancel = el('button', { part: 'button cancel', type: 'button', class: 'secondary' }, ['Cancel'])
    const signOut = el('button', { part: 'button sign-out', type: 'button', class: 'secondary' }, ['Sign out'])
    const copy = el('button', { part: 'button copy', type: 'button', class: 'secondary', 'aria-label': 'Copy code' }, ['Copy'])
    const qr = el('img', { part: 'qr', class: 'qr', alt: 'QR code to open the sign-in page' })
    const code = el('div', { part: 'code', class: 'code', 'aria-label': 'Your code' })
    const link = el('a', { part: 'link', target: '_blank', rel: 'noopener noreferrer' })
    const countdown = el('p', { part: 'countdown', class: 'countdown' })
    const who = el('p', { part: 'user', class: 'hint' })
    const badge = el('span', { part: 'preview', class: 'badge', hidden: '' }, ['Preview'])
    const status = el('p', { part: 'status', class: 'status', role: 'status', 'aria-live': 'polite' })
    const codeView = el('div', { part: 'code-view', hidden: '' }, [
      qr, code, el('div', { class: 'row' }, [copy, cancel]),
      el('p', { class: 'hint' }, ['or go to ', link]), countdown,
    ])
    const signedInView = el('div', { part: 'signed-in-view', hidden: '' }, [
      el('p', { class: 'hint' }, [who, badge]), el('div', { class: 'row' }, [signOut]),
    ])
    const startView = el('div', { part: 'start-view', class: 'row' }, [signIn])
    root.append(el('div', { class: 'card', part: 'card' }, [startView, codeView, signedInView, status]))
    this.#ui = { signIn, cancel, signOut, copy, qr, code, link, countdown, who, badge, status, codeView, signedInView, startView }

    signIn.addEventListener('click', () => { this.signIn().catch(() => {}) })
    cancel.addEventListener('click', () => this.cancel())
    signOut.addEventListener('click', () => { this.signOut().catch(() => {}) })
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(code.textContent)
        this.#say('Code copied.')
      } catch {
        this.#say('Copy the code by hand.')
      }
    })
  }

  /** @param {string} name @param {string|null} oldValue @param {string|null} newValue */
  attributeChangedCallback(name, oldValue, newValue) {
    if (oldValue === newValue) return
    if (this.#session && (name === 'issuer' || name === 'client-id' || name === 'vending')) {
      // A lease is for one issuer and app: changing either signs out.
      this.signOut().catch(() => {})
    }
  }

  /**
   * Starts downloading and compiling keyless.wasm as soon as the element is
   * on the page, so Sign in does not wait for 1 MB to arrive; preload="none"
   * defers it to the first click.
   */
  connectedCallback() {
    if (this.getAttribute('preload') !== 'none') {
      compileClient(this.getAttribute('wasm') || undefined).catch(() => {})
    }
    // session="memory": every load starts signed out.
    if (this.getAttribute('session') !== 'memory' && !this.#session) this.#restore()
  }

  disconnectedCallback() { clearInterval(this.#timer) }

  /** The current state: signed_out, starting, code, pending, approved, signed_in, denied, expired, error. */
  get status() { return this.#status }

  /** The signed-in session (subject, scope, expiresAt, preview), or null. */
  get session() { return this.#session }

  #options() {
    const issuer = this.getAttribute('issuer')
    const clientId = this.getAttribute('client-id')
    const api = this.getAttribute('api') || location.origin
    if (!issuer) throw new TypeError('<keyless-login>: the "issuer" attribute is required')
    if (!clientId) throw new TypeError('<keyless-login>: the "client-id" attribute is required')
    const opts = { issuer, clientId, scope: this.getAttribute('scope') || '', api, persist: this.getAttribute('session') !== 'memory' }
    const vending = this.getAttribute('vending')
    if (vending) {
      opts.vending = vending
      opts.idpScope = this.getAttribute('idp-scope') || 'openid'
    }
    return opts
  }

  /** Starts the device flow. Resolves with the session once signed in. */
  async signIn() {
    let opts
    try {
      opts = this.#options()
    } catch (e) {
      this.#fail(e)
      throw e
    }
    this.#ui.signIn.disabled = true
    try {
      const client = await loadClient(this.getAttribute('wasm') || undefined)
      const session = await client.login({
        ...opts,
        onState: (s) => this.#onState(s),
        onEvent: (e) => this.#onEvent(e),
      })
      this.#signedIn(session)
      return session
    } catch (e) {
      this.#fail(e)
      throw e
    } finally {
      this.#ui.signIn.disabled = false
    }
  }

  #signedIn(session) {
    this.#session = session
    this.#show('signed_in')
    this.#ui.who.textContent = session.subject ? `Signed in as ${session.subject}` : 'Signed in'
    this.#ui.badge.hidden = !session.preview
    if (session.preview) this.#say('Preview mode: answers are examples, not live data.')
    this.#emit('keyless-authenticated', session)
    if (session.keyPersistent === false) {
      // No IndexedDB here (an iframe sandboxed without allow-same-origin,
      // some private modes): the key lives in memory for this page only.
      this.#say(messages.storage_unavailable)
      this.#emit('keyless-error', { code: 'storage_unavailable', message: messages.storage_unavailable, recoverable: true })
    }
  }

  /**
   * Resumes the session an earlier load of the page kept (its renewal token
   * in IndexedDB beside the key it is bound to), without a new approval.
   * Ends with status signed_in, or signed_out when there is nothing to
   * resume.
   */
  async #restore() {
    let opts
    try {
      opts = this.#options()
    } catch {
      return
    }
    const idle = () => !this.#session && this.#status === 'signed_out' && !this.#ui.signIn.disabled
    try {
      // Boot the client only when there is something to resume.
      if (!(await keptRenewal(opts.issuer, opts.clientId))) throw new Error('nothing kept')
      const client = await loadClient(this.getAttribute('wasm') || undefined)
      if (!idle()) return
      const session = await client.restore({ ...opts, onEvent: (e) => this.#onEvent(e) })
      if (!idle()) return
      if (session) {
        this.#signedIn(session)
        return
      }
    } catch {
      // Offline or the issuer is down: the user can still sign in.
    }
    if (idle()) {
      this.#show('signed_out')
      this.#say('')
    }
  }

  /** Stops a running sign-in. */
  cancel() {
    globalThis.keyless?.cancel()
  }

  /** Revokes the lease at the server and forgets it. */
  async signOut({ forget = false } = {}) {
    const had = this.#session
    this.#session = null
    clearInterval(this.#timer)
    try {
      if (globalThis.keyless) await globalThis.keyless.logout({ forget })
    } finally {
      this.#show('signed_out')
      this.#say(had ? messages.signed_out : '')
      // Pages hide what they showed for the user on this event.
      this.#emit('keyless-state', { status: 'signed_out' })
    }
  }

  /**
   * fetch() through the lease: adds Authorization: DPoP and a fresh proof.
   * Bodies must be strings, ArrayBuffers or Uint8Arrays.
   * @param {string} url @param {RequestInit} [init] @returns {Promise<Response>}
   */
  async fetch(url, init = {}) {
    if (typeof url !== 'string') throw new TypeError('"url" must be a string')
    const client = await loadClient(this.getAttribute('wasm') || undefined)
    const r = await client.fetch(url, init)
    const body = r.status === 204 || r.status === 304 || init.method === 'HEAD' ? null : r.body
    const res = new Response(body, { status: r.status, headers: r.headers })
    if (r.status === 401) {
      const www = res.headers.get('www-authenticate') || ''
      if (www.includes('invalid_token')) this.#expired('The session ended. Sign in again.')
    }
    return res
  }

  #onState(s) {
    switch (s.status) {
      case 'code':
        this.#ui.qr.src = s.qr
        this.#ui.code.textContent = s.userCode
        {
          // The issuer chooses these URIs; a hostile one could send javascript: or data:.
          const href = linkHref(s.verificationUriComplete) || linkHref(s.verificationUri)
          if (href) this.#ui.link.href = href
          else this.#ui.link.removeAttribute('href')
        }
        this.#ui.link.textContent = s.verificationUri
        this.#deadline = Date.now() + s.expiresIn * 1000
        clearInterval(this.#timer)
        this.#tick()
        this.#timer = setInterval(() => this.#tick(), 1000)
        this.#show('code')
        break
      case 'approved':
        clearInterval(this.#timer)
        this.#show('approved')
        break
      default:
        this.#show(s.status)
    }
    this.#emit('keyless-state', { ...s })
  }

  #onEvent(e) {
    if (e.type === 'renewal_failed') {
      this.#expired('Could not renew access. Sign in again.')
      this.#emit('keyless-error', { code: e.code, message: e.message })
    } else if (e.type === 'renewed' && this.#session) {
      this.#session = { ...this.#session, expiresAt: e.expiresAt }
      this.#emit('keyless-state', { status: 'renewed', expiresAt: e.expiresAt })
    }
  }

  #expired(message) {
    this.#session = null
    this.#show('expired')
    // A page that explains the end of the session itself calls
    // preventDefault() on keyless-expired, so the user reads it once.
    const ev = new CustomEvent('keyless-expired', { detail: { message }, bubbles: true, composed: true, cancelable: true })
    this.#say(this.dispatchEvent(ev) ? message : '')
  }

  #tick() {
    const left = Math.max(0, Math.round((this.#deadline - Date.now()) / 1000))
    const m = Math.floor(left / 60)
    const s = String(left % 60).padStart(2, '0')
    this.#ui.countdown.textContent = `Code expires in ${m}:${s}`
    if (left === 0) clearInterval(this.#timer)
  }

  #fail(e) {
    clearInterval(this.#timer)
    const code = e?.code || (e instanceof TypeError ? 'invalid_argument' : 'error')
    const status = code === 'access_denied' ? 'denied' : code === 'expired_token' ? 'expired' : code === 'cancelled' ? 'signed_out' : 'error'
    this.#show(status)
    // An app the issuer does not know is a setup mistake the page's
    // author can fix: say which client-id, rather than "unknown client".
    const detail = code === 'invalid_client'
      ? `This app (client-id "${this.getAttribute('client-id')}") is not registered with the issuer: add it under clients: in its keyless.yaml.`
      : e?.message || ''
    this.#say(status === 'error' ? `${messages.error} ${detail}`.trim() : messages[status], status === 'error')
    if (status === 'expired') this.#emit('keyless-expired', { message: messages.expired })
    if (code !== 'cancelled') this.#emit('keyless-error', { code, message: String(e?.message || e) })
  }

  #show(status) {
    this.#status = status
    this.setAttribute('status', status)
    const ui = this.#ui
    const inCode = status === 'code' || status === 'pending' || status === 'slow_down'
    ui.codeView.hidden = !inCode
    ui.signedInView.hidden = status !== 'signed_in'
    ui.startView.hidden = inCode || status === 'signed_in' || status === 'approved' || status === 'starting'
    ui.signIn.textContent = status === 'signed_out' ? 'Sign in' : 'Sign in again'
    if (status in messages) this.#say(messages[status], status === 'error')
  }

  #say(text, isError = false) {
    this.#ui.status.textContent = text
    this.#ui.status.dataset.kind = isError ? 'error' : 'info'
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }))
  }
}

/**
 * fetch() through the first signed-in <keyless-login> on the page, for a
 * no-code canvas's own actions.
 * @param {string} url @param {RequestInit} [init]
 */
export function keylessFetch(url, init) {
  const e = [...document.querySelectorAll('keyless-login')].find((x) => x.session)
  if (!e) return Promise.reject(Object.assign(new Error('keyless: not signed in'), { code: 'not_signed_in' }))
  return e.fetch(url, init)
}

KeylessLoginElement.define()
globalThis.keylessFetch ??= keylessFetch
