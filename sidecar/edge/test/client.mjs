// A DPoP client for the edge tests (npm dpop for proofs, WebCrypto for the
// edited ones) and the interpreter of the shared attack rows
// (sidecar/proxy/testdata/attacks.json), field for field as
// sidecar/proxy/shared_attack_test.go reads them.
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { webcrypto as crypto, createHash, randomBytes } from 'node:crypto'
import { generateKeyPair, generateProof } from 'dpop'

export const publicURL = 'https://api.example.test'
const enc = new TextEncoder()
export const b64u = (b) => Buffer.from(b).toString('base64url')
const b64uJSON = (o) => b64u(enc.encode(typeof o === 'string' ? o : JSON.stringify(o)))
export const ath = (tok) => createHash('sha256').update(tok).digest('base64url')
const random = () => randomBytes(9).toString('base64url')

/** A DPoP key: npm dpop's key pair, its public JWK and thumbprint. */
export async function newKey(alg = 'ES256') {
  const kp = await generateKeyPair(alg)
  const jwk = await crypto.subtle.exportKey('jwk', kp.publicKey)
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
  const jkt = createHash('sha256').update(JSON.stringify(members)).digest('base64url')
  return { alg, kp, jwk: { ...members }, jkt }
}

async function signES256(key, input) {
  return new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key.kp.privateKey, enc.encode(input)))
}

async function signJWS(key, header, claims) {
  const input = b64uJSON(header) + '.' + b64uJSON(claims)
  return input + '.' + b64u(await signES256(key, input))
}

/** The issuer's mint: a lease for spec (see the helper's mintSpec). */
export async function mint(world, spec) {
  const res = await fetch(world.issuer + '/mint', { method: 'POST', body: JSON.stringify(spec) })
  const text = await res.text()
  if (res.status !== 200) throw new Error('mint: ' + text)
  return text
}

export function claimsOf(tok) {
  return JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString())
}

// P-256 group order, for malleating (r, s) into (r, n-s).
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n

export function malleate(proof) {
  const i = proof.lastIndexOf('.')
  const sig = Buffer.from(proof.slice(i + 1), 'base64url')
  const s = BigInt('0x' + sig.subarray(32).toString('hex'))
  const out = Buffer.concat([sig.subarray(0, 32), Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex')])
  return proof.slice(0, i + 1) + b64u(out)
}

/** {prefix, repeat, n, encode, suffix}, a string, or a list. */
export function value(v) {
  if (v && typeof v === 'object' && !Array.isArray(v) && 'repeat' in v) {
    let s = (v.prefix || '') + v.repeat.repeat(v.n)
    if (v.encode === 'base64url') s = b64u(enc.encode(s))
    return s + (v.suffix || '')
  }
  return v
}

/**
 * A target is a server under test: the native sidecar or the Worker.
 * revoke pushes a revocation to it.
 */
export class Runner {
  constructor(world, target, client) {
    Object.assign(this, { world, target, client })
  }

  async lease(row, jkt, scopes) {
    const l = row.lease || {}
    const spec = { scope: scopes, jkt }
    if (l.sub) spec.sub = l.sub === '{random}' ? 'bob-' + random() : l.sub
    if (l.client_id) spec.client_id = l.client_id === '{random}' ? 'app-' + random() : l.client_id
    if ('lease_id' in l) spec.lease_id = l.lease_id
    for (const k of ['aud', 'ttl_s', 'issued_ago_s', 'iss', 'foreign_keys']) if (k in l) spec[k] = l[k]
    return mint(this.world, spec)
  }

  async signers(row) {
    switch (row.signer || '') {
      case '': return { jkt: this.client.jkt, key: this.client }
      case 'fresh': { const k = await newKey(); return { jkt: k.jkt, key: k } }
      case 'attacker': return { jkt: this.client.jkt, key: await newKey() }
      case 'attacker-ed25519': return { jkt: this.client.jkt, key: await newKey('Ed25519') }
    }
    throw new Error('unknown signer ' + row.signer)
  }

  async token(row, tok) {
    const t = row.token
    if (!t) return tok
    if ('literal' in t) return value(t.literal)
    if (t.forge_header) {
      const real = await mint(this.world, { scope: ['orders:read'], jkt: this.client.jkt })
      const kid = JSON.parse(Buffer.from(real.split('.')[0], 'base64url').toString()).kid
      const hdr = Object.fromEntries(Object.entries(t.forge_header).map(([k, v]) => [k, v === '{kid}' ? kid : v]))
      const sig = t.signature === 'zero64' ? b64u(new Uint8Array(64)) : ''
      return b64uJSON(hdr) + '.' + real.split('.')[1] + '.' + sig
    }
    if (t.tamper) {
      const p = (await mint(this.world, { scope: ['admin'], jkt: this.client.jkt })).split('.')
      const other = (await mint(this.world, { scope: ['orders:read'], jkt: this.client.jkt })).split('.')
      return p[0] + '.' + p[1] + '.' + other[2]
    }
    throw new Error('empty token edit')
  }

  async proof(row, key, tok) {
    const p = row.proof || {}
    const method = p.for_method || row.method || 'GET'
    const path = p.for_path || (row.path || '/v1/orders').split('?')[0]
    const edits = p.header || p.claims || p.jwk || p.sign_with || p.mangle || p.iat_offset_s
    if (!edits) return generateProof(key.kp, publicURL + path, method, undefined, tok)
    const hdr = { typ: 'dpop+jwt', alg: 'ES256', jwk: { ...key.jwk, ...(p.jwk || {}) } }
    const cl = { jti: random(), htm: method, htu: publicURL + path, iat: Math.floor(Date.now() / 1000), ath: ath(tok) }
    for (const [k, v] of Object.entries(p.header || {})) if (v === null) delete hdr[k]; else hdr[k] = value(v)
    for (const [k, v] of Object.entries(p.claims || {})) if (v === null) delete cl[k]; else cl[k] = value(v)
    if (p.iat_offset_s) cl.iat = Math.floor(Date.now() / 1000) + p.iat_offset_s
    const signer = p.sign_with === 'other' ? await newKey() : key
    if (p.mangle === 'duplicate_htm') {
      const input = b64uJSON(hdr) + '.' + b64uJSON('{"htm":"POST",' + JSON.stringify(cl).slice(1))
      return input + '.' + b64u(await signES256(signer, input))
    }
    let out = await signJWS(signer, hdr, cl)
    const i = out.lastIndexOf('.')
    switch (p.mangle || '') {
      case '': break
      case 'drop_signature': out = out.slice(0, i); break
      case 'append_segment': out += '.AAAA'; break
      case 'json_serialization': {
        const [a, b, c] = out.split('.')
        out = `{"protected":"${a}","payload":"${b}","signature":"${c}"}`
        break
      }
      case 'zero_signature': out = out.slice(0, i + 1) + b64u(new Uint8Array(64)); break
      case 'signature_append_byte': out = out.slice(0, i + 1) + b64u(Buffer.concat([Buffer.from(out.slice(i + 1), 'base64url'), Buffer.from([0])])); break
      default: throw new Error('unknown mangle ' + p.mangle)
    }
    return out
  }

  /** Builds the row's request: {method, path, headers: [[name, value]...], body}. */
  async build(row) {
    const method = row.method || 'GET'
    const path = row.path || '/v1/orders'
    const scopes = row.scopes || ['orders:read']
    let headers = []
    let tok = ''
    let proof = ''
    let key = null
    if (row.auth !== 'none') {
      const s = await this.signers(row)
      key = s.key
      tok = await this.token(row, await this.lease(row, s.jkt, scopes))
      proof = await this.proof(row, key, tok)
      headers.push(['Authorization', 'DPoP ' + tok], ['DPoP', proof])
    }
    const expand = (v) => v.replaceAll('{token}', tok).replaceAll('{proof}', proof)
    const hs = row.headers || {}
    const del = (n) => { headers = headers.filter(([k]) => k.toLowerCase() !== n.toLowerCase()) }
    for (const n of hs.delete || []) del(n)
    for (const [n, raw] of Object.entries(hs.set || {})) {
      del(n)
      const v = value(raw)
      for (const x of Array.isArray(v) ? v : [v]) headers.push([n, expand(x)])
    }
    for (const [n, v] of Object.entries(hs.add || {})) headers.push([n, expand(v)])
    let body
    if (row.body) {
      headers.push(['Content-Type', row.body.content_type])
      body = row.body.repeat.repeat(row.body.n)
    }
    return { method, path, headers, body, tok, key, scopes }
  }

  /** Runs a row against the target; resolves to the response. */
  async run(row) {
    const req = await this.build(row)
    if (row.raw) return rawRequest(this.target.url, req)
    if (row.first) {
      // One valid request with the same lease and its own proof first.
      const p = await this.proof(row, req.key, req.tok)
      const first = { ...req, headers: req.headers.map(([k, v]) => [k, k === 'DPoP' ? p : v]) }
      const res = await send(this.target.url, first)
      if (res.status !== 200) throw new Error(`first use: ${res.status} ${res.body}`)
      const fresh = await this.proof(row, req.key, req.tok)
      req.headers = req.headers.map(([k, v]) => [k, k === 'DPoP' ? fresh : v])
    }
    if (row.replay) {
      const res = await send(this.target.url, req)
      if (res.status !== 200) throw new Error(`first use: ${res.status} ${res.body}`)
      if (row.replay === 'new_lease') {
        const tok = await mint(this.world, { scope: req.scopes, jkt: this.client.jkt })
        req.headers = req.headers.map(([k, v]) => [k, k === 'Authorization' ? 'DPoP ' + tok : v])
      } else if (row.replay === 'malleate') {
        req.headers = req.headers.map(([k, v]) => [k, k === 'DPoP' ? malleate(v) : v])
      }
    }
    if (row.revoke) {
      const c = claimsOf(req.tok)
      const v = { lease: c.lease_id, jti: c.jti, sub: c.sub, client: c.client_id, jkt: c.cnf.jkt }[row.revoke]
      // Subject, app and key revocations are watermarks (docs/revocation.md):
      // recorded until cutoff + 8 days, ending what was issued up to the
      // cutoff, here this lease's iat.
      const watermark = ['sub', 'client', 'jkt'].includes(row.revoke)
      await this.target.revoke({ kind: row.revoke, value: v, until: watermark ? c.iat + 8 * 24 * 3600 : c.exp })
    }
    return send(this.target.url, req)
  }
}

/** Sends a request with exactly these header fields (repeats kept); Host is base's unless host is given. */
export function send(base, { method, path, headers, body, host }) {
  return new Promise((resolve, reject) => {
    const u = new URL(base)
    const flat = ['Host', host ?? u.host, ...headers.flatMap(([k, v]) => [k, v])]
    if (body !== undefined) flat.push('Content-Length', String(Buffer.byteLength(body)))
    const req = httpRequest({ host: u.hostname, port: u.port, method, path, headers: flat, agent: false }, (res) => {
      let b = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { b += c })
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: b }))
    })
    req.setTimeout(20000, () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end(body)
  })
}

/** Sends raw HTTP/1.1 bytes: targets no client would normalize. */
export function rawRequest(base, { method, path, headers }) {
  return new Promise((resolve, reject) => {
    const u = new URL(base)
    const sock = connect(Number(u.port), u.hostname)
    let data = ''
    let done = false
    // Parses as bytes arrive: some servers keep the connection open
    // despite Connection: close, so the response ends at Content-Length.
    const parse = (final) => {
      const end = data.indexOf('\r\n\r\n')
      if (done || end < 0) return
      const [statusLine, ...lines] = data.slice(0, end).split('\r\n')
      const hs = {}
      for (const l of lines) {
        const i = l.indexOf(':')
        hs[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
      }
      const body = data.slice(end + 4)
      const n = Number(hs['content-length'] ?? NaN)
      if (!final && !(body.length >= n)) return
      done = true
      sock.destroy()
      resolve({ status: Number(statusLine.split(' ')[1]), headers: hs, body })
    }
    sock.setEncoding('latin1')
    sock.setTimeout(20000, () => sock.destroy(new Error('timeout')))
    sock.on('data', (c) => { data += c; parse(false) })
    sock.on('error', (e) => { if (!done) reject(e) })
    sock.on('end', () => parse(true))
    let req = `${method} ${path} HTTP/1.1\r\nHost: api.example.test\r\n`
    for (const [k, v] of headers) req += `${k}: ${v}\r\n`
    sock.write(req + 'Connection: close\r\n\r\n')
  })
}

/** error="..." of WWW-Authenticate; undefined when the header is absent. */
export function wwwAuthError(res) {
  const v = res.headers['www-authenticate']
  if (v === undefined) return undefined
  const m = /error="([^"]*)"/.exec(v)
  return m ? m[1] : ''
}
