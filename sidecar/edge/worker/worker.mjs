// keyless edge Worker: the JS shim around the Go check chain
// (keyless-edge.wasm, built from sidecar/edge/worker by `make edge`).
//
// One Go instance per isolate: it boots on the first request and serves
// every later one (a Go instance per request costs 11-18 ms of CPU). The
// Go side reads the configuration from env once, then answers
// keylessEdge.serve(request). Durable Objects below hold the state that
// must be strongly consistent: the jti replay cache and the revocations.
import "./wasm_exec.js";
import { DurableObject } from "cloudflare:workers";
import mod from "./keyless-edge.wasm";

// WebCrypto parameters per JWS alg: [importKey, verify].
const ALGS = {
  ES256: [{ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
  ES384: [{ name: "ECDSA", namedCurve: "P-384" }, { name: "ECDSA", hash: "SHA-384" }],
  Ed25519: [{ name: "Ed25519" }, { name: "Ed25519" }],
  EdDSA: [{ name: "Ed25519" }, { name: "Ed25519" }],
  RS256: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, { name: "RSASSA-PKCS1-v1_5" }],
  PS256: [{ name: "RSA-PSS", hash: "SHA-256" }, { name: "RSA-PSS", saltLength: 32 }],
};

// Imported keys by alg and public key: a client signs many proofs with
// one key, the issuer many leases. Bounded; cleared when full.
const keys = new Map();
const MAX_KEYS = 1000;

// The isolate's env (set by boot): the Durable Object namespaces.
let ENV = {};

// settle runs f and reports its outcome to Go: keylessEdge.settled(id,
// ok, value), installed by Go once (see bridge_js.go). A throw, even a
// synchronous one, is reported as a failure: Go always hears back.
function settle(id, f) {
  new Promise((resolve) => resolve(f())).then(
    (v) => globalThis.keylessEdge.settled(id, true, v),
    (e) => globalThis.keylessEdge.settled(id, false, String(e && e.message ? e.message : e)),
  );
}

// stub is the Durable Object named name of binding, or throws.
function stub(binding, name) {
  const ns = ENV[binding];
  if (!ns) throw new Error("edge: " + binding + " binding missing");
  return ns.get(ns.idFromName(name));
}

// b64url decodes base64url (no padding) to bytes.
function b64url(s) {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function makeHeaders(s) {
  const h = new Headers();
  for (const line of s.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) h.append(line.slice(0, i), line.slice(i + 1));
  }
  return h;
}

// readBody reads a stream up to limit bytes (then stops reading).
// A body already read (a Uint8Array) is cut to limit.
async function readBody(stream, limit) {
  if (stream instanceof Uint8Array) return stream.subarray(0, limit);
  const reader = stream.getReader();
  const chunks = [];
  let n = 0;
  while (n < limit) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    n += value.byteLength;
  }
  // Past the limit the request is refused: cancel the rest, so the
  // runtime stops receiving it instead of holding the connection.
  if (n >= limit) reader.cancel().catch(() => {});
  else reader.releaseLock();
  const out = new Uint8Array(Math.min(n, limit));
  let off = 0;
  for (const c of chunks) {
    const part = c.subarray(0, out.length - off);
    out.set(part, off);
    off += part.length;
  }
  return out;
}

const utf8 = new TextEncoder();

async function verify(keyID, input, sig) {
  const [alg, kty, crv, x, y, n, e] = keyID.split("\n");
  const a = ALGS[alg];
  if (!a) return false;
  let key = keys.get(keyID);
  if (key === undefined) {
    const jwk = kty === "RSA" ? { kty, n, e } : kty === "OKP" ? { kty, crv, x } : { kty, crv, x, y };
    try {
      key = await crypto.subtle.importKey("jwk", jwk, a[0], false, ["verify"]);
    } catch {
      return false;
    }
    if (keys.size >= MAX_KEYS) keys.clear();
    keys.set(keyID, key);
  }
  try {
    return await crypto.subtle.verify(a[1], key, b64url(sig), utf8.encode(input));
  } catch {
    return false;
  }
}

// keylessEdge is what Go calls. The asynchronous helpers take plain
// strings and numbers and a call id last, and report through settled:
// every value that crosses into Go as an object or string costs it a
// finalizer, which dominated the Worker's CPU (see bridge_js.go).
globalThis.keylessEdge = {
  serve: null, // installed by Go
  settled: null, // installed by Go

  // forward is the origin fetch: the runtime's fetch, redirects passed
  // on (never followed, as the process proxy), with the request's own
  // body; it settles with the Response.
  forward(method, url, lines, body, id) {
    settle(id, () => fetch(url, { method, headers: makeHeaders(lines), body, redirect: "manual" }));
  },
  // fieldLines is a Response's fields for Go, "name:value\n" each, every
  // Set-Cookie on its own.
  fieldLines(res) {
    let s = "";
    for (const [k, v] of res.headers) if (k !== "set-cookie") s += k + ":" + v + "\n";
    for (const c of res.headers.getSetCookie()) s += "set-cookie:" + c + "\n";
    return s;
  },

  readBody(body, limit, id) { settle(id, () => readBody(body, limit)); },

  // verify is the signature check behind dpop.VerifyOptions.Verifier and
  // the lease check: crypto.subtle.verify, never Go's crypto in wasm.
  // keyID is the alg and the JWK's kty, crv, x, y, n and e, "\n"-separated;
  // input the signing input; sig the signature in base64url.
  verify(keyID, input, sig, id) { settle(id, () => verify(keyID, input, sig)); },

  use(jkt, jti, until, max, id) {
    settle(id, () => stub("KEYLESS_REPLAY", jkt).use(jti, until, max));
  },
  anyRevoked(lines, id) {
    settle(id, () => stub("KEYLESS_REVOCATIONS", "revocations").anyRevoked(lines));
  },
  revoke(key, until, id) {
    settle(id, () => stub("KEYLESS_REVOCATIONS", "revocations").revoke(key, until));
  },
  // allow answers "allowed limit remaining resetMs retryMs".
  allow(key, rate, burst, now, id) {
    settle(id, async () => {
      const [ok, limit, remaining, reset, retry] = await stub("KEYLESS_RATELIMIT", key).allow(rate, burst, now);
      return [ok ? 1 : 0, limit, remaining, reset, retry].join(" ");
    });
  },
};

// boot starts the isolate's one Go instance, synchronously: go.run runs
// Go's main until it blocks, and by then main has installed
// keylessEdge.serve. Nothing awaits a boot promise: a request waiting on a
// promise made in another request's context (the one that booted) is
// cancelled by workerd as hung, which answered 500 to all but the first
// of a fresh isolate's concurrent first requests. If Go ever exits (a
// crash), the next request boots a new one.
function boot(env) {
  const ed = globalThis.keylessEdge;
  if (ed.serve) return;
  // syumai/workers' cloudflare package reads env from globalThis.context
  // (its runtime context), captured when Go starts: the isolate's env.
  globalThis.context = { env };
  ENV = env;
  const go = new Go();
  const instance = new WebAssembly.Instance(mod, go.importObject);
  const exited = (err) => {
    ed.serve = null;
    console.error("keyless edge: Go exited" + (err ? ": " + err : ""));
  };
  go.run(instance).then(() => exited(), exited);
  if (!ed.serve) throw new Error("keyless edge: Go did not start");
}

// head is what Go reads of a request: "METHOD\nURL\n" and the header
// fields, "name:value\n" each, as one string.
function head(request) {
  let s = request.method + "\n" + request.url + "\n";
  for (const [k, v] of request.headers) s += k + ":" + v + "\n";
  return s;
}

export default {
  async fetch(request, env) {
    boot(env);
    // Go answers done(status, fields, body, auditLine); the audit line is
    // one JSON line per decision, for Workers Logs and Logpush.
    return new Promise((resolve, reject) => {
      globalThis.keylessEdge.serve(head(request), request.body,
        (status, fields, body, line) => {
          if (line) console.log(line);
          resolve(new Response(body ?? null, { status, headers: makeHeaders(fields) }));
        },
        (err) => reject(new Error(err)));
    });
  },
};

// ReplayGuard is the jti replay cache of one DPoP key (the Worker names
// each object by the key's thumbprint): use(jti, until, max) records the
// jti until the proof can no longer be accepted and reports whether it was
// the first use. A Durable Object is one single-threaded instance with
// input gates (no other event is delivered while a storage call is in
// flight), so the get-then-put below is atomic: two isolates, or two
// locations, cannot both accept one proof. Workers KV could not do this:
// it is eventually consistent (a write takes up to 60 s to be seen
// elsewhere), so two edge locations could both see "unused".
//
// The object holds every live jti of its key, so it also bounds them
// (dpop.replay_per_key, docs/security.md "Limits"): with max > 0, a key
// that holds max live entries gets, instead of true or false, the ms
// until its oldest entry expires, and nothing is recorded.
export class ReplayGuard extends DurableObject {
  async use(jti, until, max) {
    const now = Date.now();
    const k = "jti:" + jti;
    if (max > 0) {
      // Bounded per key: the object keeps its key's live entries in
      // memory (read from storage once per instance), so the replay
      // check costs no storage read.
      const live = await this.live(now);
      if (live.length >= max) return Math.max(1, live[0] - now);
      const prev = this.jtis.get(jti);
      if (prev !== undefined && prev > now) return false;
      this.jtis.set(jti, until);
      let i = live.length;
      while (i > 0 && live[i - 1] > until) i--;
      live.splice(i, 0, until);
    } else {
      const prev = await this.ctx.storage.get(k);
      if (prev !== undefined && prev > now) return false;
    }
    // Not awaited: the output gate holds the answer until the write is
    // durable, and no other call runs before it is applied.
    this.ctx.storage.put(k, until);
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt === null) {
      this.alarmAt = until + 1000;
      this.ctx.storage.setAlarm(this.alarmAt);
    }
    return true;
  }

  // live is the expiries of the key's live entries, oldest first, with
  // this.jtis (jti -> until): read from storage once per instance, then
  // kept up to date in memory.
  async live(now) {
    if (this.exp === undefined) {
      const exp = [];
      const jtis = new Map();
      for (const [k, until] of await this.ctx.storage.list({ prefix: "jti:" })) {
        if (until > now) {
          exp.push(until);
          jtis.set(k.slice(4), until);
        }
      }
      this.exp = exp.sort((a, b) => a - b);
      this.jtis = jtis;
    }
    let i = 0;
    while (i < this.exp.length && this.exp[i] <= now) i++;
    if (i > 0) this.exp.splice(0, i);
    // Expired jtis are harmless (their until has passed); they are
    // dropped in one pass once they are half the map.
    if (this.jtis.size > 2 * this.exp.length + 64) {
      for (const [j, until] of this.jtis) if (until <= now) this.jtis.delete(j);
    }
    return this.exp;
  }

  // alarm drops expired entries and comes back for the rest.
  async alarm() {
    this.alarmAt = null;
    const next = await sweep(this.ctx.storage, ["jti:"], Date.now());
    if (next !== Infinity) {
      this.alarmAt = next + 1000;
      await this.ctx.storage.setAlarm(this.alarmAt);
    }
  }
}

// sweep deletes the entries under prefixes (values: until, Unix ms) whose
// until has passed, 128 keys per delete (the storage API's batch), and
// returns the earliest until left (Infinity: none).
async function sweep(st, prefixes, now) {
  let next = Infinity;
  const gone = [];
  for (const prefix of prefixes) {
    for (const [k, until] of await st.list({ prefix })) {
      if (until <= now) gone.push(k);
      else next = Math.min(next, until);
    }
  }
  for (let i = 0; i < gone.length; i += 128) await st.delete(gone.slice(i, i + 128));
  return next;
}

// durationMs reads a Go-style duration var ("500ms", "1s", "2m"); a
// missing or unreadable one is def (the Go side validates nothing here).
function durationMs(v, def) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(String(v ?? "").trim());
  if (!m) return def;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60000 }[m[2]];
}

// FEED_TIMEOUT_MS bounds one poll of the issuer's feed: a request never
// waits longer than this on a slow or unreachable issuer.
const FEED_TIMEOUT_MS = 1000;

// RevocationList holds the issuer's revocations: "rev:kind:value" -> until
// (ms) from the feed, "push:kind:value" -> until from pushes. They arrive
// two ways. The issuer pushes each one (POST
// /.keyless/revocations on the Worker), and, with KEYLESS_REVOCATION_FEED
// set, the object follows the issuer's revocation log through its feed
// (docs/revocation.md, "The revocation feed"), the endpoint and shared
// secret `keyless proxy --feed-secret-file` uses: it polls from the request
// path at most once per KEYLESS_REVOCATION_FEED_INTERVAL, resuming after
// the last sequence number it applied (kept in storage, so an evicted or
// restarted object catches up on what it missed, pushes included). Past
// KEYLESS_REVOCATION_FEED_MAX_STALE without an answer from the feed it
// throws, and the Worker answers 503, never a pass. Pushes are kept apart
// from the feed's copy, so a snapshot (which replaces that copy) never
// drops a push the log does not hold yet; each entry stays until its own
// until, when an alarm deletes it.
export class RevocationList extends DurableObject {
  async revoke(key, until) {
    await this.ctx.storage.put("push:" + key, until);
    await this.arm(until);
  }

  // arm makes the alarm fire at most a second after until.
  async arm(until) {
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt === null || until + 1000 < this.alarmAt) {
      this.alarmAt = until + 1000;
      await this.ctx.storage.setAlarm(this.alarmAt);
    }
  }

  // alarm deletes the revocations whose until has passed and comes back
  // at the next one's.
  async alarm() {
    this.alarmAt = null;
    const next = await sweep(this.ctx.storage, ["rev:", "push:"], Date.now());
    if (next !== Infinity) await this.arm(next);
  }

  // follow brings the copy up to the issuer's log when a poll is due and
  // throws while the copy is not provably recent. No feed configured: the
  // object knows only what was pushed (the Worker's earlier behaviour).
  async follow() {
    const env = this.env ?? {};
    const url = env.KEYLESS_REVOCATION_FEED;
    if (!url) return;
    const interval = durationMs(env.KEYLESS_REVOCATION_FEED_INTERVAL, 1000);
    const bound = durationMs(env.KEYLESS_REVOCATION_FEED_MAX_STALE, 10000);
    if (this.feed === undefined) {
      this.feed = (await this.ctx.storage.get("feed")) ?? { last: 0, contact: 0 };
      this.polledAt = 0;
    }
    if (Date.now() - this.polledAt >= interval && !this.polling) {
      this.polledAt = Date.now();
      this.polling = this.poll(url, env.KEYLESS_REVOCATION_FEED_SECRET ?? "").then(
        (full) => { if (full) this.polledAt = 0; }, // behind by a full batch: again at once
        (err) => { this.feedErr = String(err && err.message ? err.message : err); },
      ).finally(() => { this.polling = null; });
    }
    // A due poll is awaited (bounded by FEED_TIMEOUT_MS), so the answer
    // reflects the log as of at most one interval ago.
    if (this.polling) await this.polling;
    const age = Date.now() - this.feed.contact;
    if (this.feed.contact === 0 || age > bound) {
      const last = this.feed.contact === 0 ? "never" : age + "ms ago";
      throw new Error("cut off from the issuer's revocation feed longer than the bound (last contact " + last + (this.feedErr ? "; " + this.feedErr : "") + ")");
    }
  }

  // poll makes one request to the feed (wait=0: the edge never holds a
  // long poll open) and applies its batch; true when the batch was full.
  async poll(url, secret) {
    const u = new URL(url);
    u.searchParams.set("after", String(this.feed.last));
    u.searchParams.set("wait", "0");
    const started = Date.now();
    const res = await fetch(u, { headers: { Authorization: "Bearer " + secret }, signal: AbortSignal.timeout(FEED_TIMEOUT_MS) });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error("the feed answered " + res.status);
    }
    const b = await res.json();
    if (!Array.isArray(b.entries) || typeof b.last !== "number") throw new Error("malformed feed answer");
    const st = this.ctx.storage;
    const puts = {};
    if (b.snapshot) {
      // A snapshot replaces the feed's copy (the log is the source of
      // truth). Pushes ("push:") stay: one may not be in the log yet.
      const old = [...(await st.list({ prefix: "rev:" })).keys()];
      for (let i = 0; i < old.length; i += 128) await st.delete(old.slice(i, i + 128));
    }
    const keys = b.entries.map((e) => "rev:" + e.kind + ":" + e.value);
    const have = b.snapshot ? new Map() : await getMany(st, keys);
    b.entries.forEach((e, i) => {
      const k = keys[i];
      const prev = puts[k] ?? have.get(k);
      if (b.snapshot || e.reset || prev === undefined || e.until > prev) puts[k] = e.until;
    });
    const entries = Object.entries(puts);
    for (let i = 0; i < entries.length; i += 128) await st.put(Object.fromEntries(entries.slice(i, i + 128)));
    if (entries.length > 0) await this.arm(entries.reduce((m, e) => Math.min(m, e[1]), Infinity));
    this.feed = { last: b.last, contact: started };
    this.feedErr = undefined;
    await st.put("feed", this.feed);
    return b.entries.length >= 1000 && !b.snapshot;
  }

  // anyRevoked takes "kind:value" keys, one per line; a subject, app or
  // key lookup may add a tab and when the lease was issued (Unix ms): such
  // a revocation is a watermark recorded until cutoff + 8 days, and applies
  // only to what was issued up to the cutoff (store.Applies in Go). Each
  // key is looked up in the feed's copy and among the pushes.
  async anyRevoked(lines) {
    await this.follow();
    const now = Date.now();
    const horizon = 8 * 24 * 3600 * 1000; // store.WatermarkHorizon
    const lookups = lines.split("\n").flatMap((l) => {
      const [key, iat] = l.split("\t");
      const at = iat === undefined ? null : Number(iat);
      return [{ key: "rev:" + key, iat: at }, { key: "push:" + key, iat: at }];
    });
    const got = await this.ctx.storage.get(lookups.map((l) => l.key));
    for (const { key, iat } of lookups) {
      const until = got.get(key);
      if (until === undefined || !(until > now)) continue;
      if (iat === null || iat <= until - horizon) return true;
    }
    return false;
  }
}

// getMany reads keys in the storage API's batches of 128.
async function getMany(st, keys) {
  const out = new Map();
  for (let i = 0; i < keys.length; i += 128) {
    for (const [k, v] of await st.get(keys.slice(i, i + 128))) out.set(k, v);
  }
  return out;
}

// RateLimiter is one token bucket (the Worker names each object by its
// bucket: route and app, or route, app and subject), the same bucket as
// the process proxy's ratelimit.Memory: rate tokens per second refill up
// to burst, each request takes one. One object per bucket is one
// single-threaded instance in the world, so every isolate and location
// takes from the same bucket, exactly. The state is kept in storage so an
// evicted object resumes where it was; an alarm deletes it once the
// bucket would be full again (a full bucket carries no state).
export class RateLimiter extends DurableObject {
  // allow returns [allowed, limit, remaining, resetMs, retryAfterMs].
  async allow(rate, burst, now) {
    let b = this.b ?? (await this.ctx.storage.get("b"));
    if (b === undefined) b = { tokens: burst, last: now };
    const el = (now - b.last) / 1000;
    if (el > 0) {
      b.tokens = Math.min(burst, b.tokens + el * rate);
      b.last = now;
    }
    let allowed = false;
    let retry = 0;
    if (b.tokens >= 1) {
      b.tokens--;
      allowed = true;
    } else {
      retry = Math.ceil(((1 - b.tokens) / rate) * 1000);
    }
    this.b = b;
    const reset = Math.ceil(((burst - b.tokens) / rate) * 1000);
    // Not awaited: the output gate holds the answer until both are durable.
    this.ctx.storage.put("b", b);
    this.ctx.storage.setAlarm(Date.now() + reset);
    return [allowed, Math.floor(burst), Math.floor(b.tokens), reset, retry];
  }

  async alarm() {
    this.b = undefined;
    await this.ctx.storage.deleteAll();
  }
}
