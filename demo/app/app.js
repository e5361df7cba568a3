// Where2Eat: the micro app's own code. It never sees a token or a key:
// <keyless-login> signs the user in and its fetch() adds the DPoP-bound
// lease to each call to the sidecar, which forwards to the recommender.

const login = /** @type {any} */ (document.getElementById('login'))
const planner = document.getElementById('planner')
const signedOut = document.getElementById('signed-out')
const signedOutReason = document.getElementById('signed-out-reason')
const form = /** @type {HTMLFormElement} */ (document.getElementById('filters'))
const results = document.getElementById('results')
const message = document.getElementById('message')
const previewBadge = document.getElementById('preview-badge')

// ?preview runs the app on its preview registration: leases are answered
// from the sidecar's example responses and never reach the API.
if (new URLSearchParams(location.search).has('preview')) login.setAttribute('client-id', 'where2eat-preview')

const api = () => login.getAttribute('api').split(/\s+/)[0]

/** Shows a message above the results; kind is info, error or warning. */
function say(text, kind = 'info') {
  message.textContent = text
  message.dataset.kind = kind
  message.setAttribute('role', kind === 'error' ? 'alert' : 'status')
  message.hidden = !text
}

function showPlanner(on, reason) {
  planner.hidden = !on
  signedOut.hidden = on
  if (!on) {
    results.replaceChildren()
    say('')
    previewBadge.hidden = true
    if (reason !== undefined) signedOutReason.textContent = reason
  }
}

/** Reads {error, error_description} from a refusal, and the WWW-Authenticate error. */
async function refusal(res) {
  let body = {}
  try { body = await res.json() } catch { /* not JSON */ }
  const www = res.headers.get('www-authenticate') || ''
  const code = /error="([^"]+)"/.exec(www)?.[1] || body.error || `http_${res.status}`
  const scope = /scope="([^"]+)"/.exec(www)?.[1] || ''
  return { code, scope, description: body.error_description || '' }
}

function explain(r, action) {
  switch (r.code) {
    case 'insufficient_scope':
      return `Not allowed to ${action}: that needs the “${r.scope || 'write'}” permission, and this app's policy ` +
        'only grants read-only access. Ask an admin to allow it.'
    case 'rate_limited':
      return 'Slow down a little: too many requests. Try again in a moment.'
    case 'invalid_token':
      return 'Your session ended. Sign in again.'
    default:
      return `Could not ${action} (${r.code}${r.description ? ': ' + r.description : ''}).`
  }
}

const price = (n) => '$'.repeat(n)

function card(r) {
  const li = document.createElement('li')
  li.className = 'card'
  li.dataset.id = r.id
  const h = document.createElement('h3')
  h.textContent = r.name
  const meta = document.createElement('p')
  meta.className = 'meta'
  for (const [cls, text] of [['tag', r.cuisine], ['price', price(r.price)], ['where', r.neighbourhood]]) {
    const s = document.createElement('span')
    s.className = cls
    s.textContent = text
    meta.append(s)
  }
  const foot = document.createElement('div')
  foot.className = 'foot'
  const rating = document.createElement('span')
  rating.className = 'rating'
  rating.textContent = `★ ${Number(r.rating).toFixed(1)}`
  const votes = document.createElement('span')
  votes.className = 'votes'
  votes.textContent = `${r.votes || 0} vote${r.votes === 1 ? '' : 's'}`
  const btn = document.createElement('button')
  btn.type = 'button'
  btn.className = 'vote'
  btn.textContent = 'Vote'
  btn.addEventListener('click', () => vote(r, btn))
  foot.append(rating, votes, btn)
  li.append(h, meta, foot)
  return li
}

async function load() {
  const params = new URLSearchParams()
  for (const [k, v] of new FormData(form)) if (v) params.set(k, String(v))
  say('Looking for places…')
  let res
  try {
    res = await login.fetch(`${api()}/recommendations?${params}`)
  } catch (e) {
    say(`Could not reach the API (${e.code || e.message}).`, 'error')
    return
  }
  if (!res.ok) {
    const r = await refusal(res)
    if (r.code !== 'invalid_token') say(explain(r, 'load recommendations'), 'error')
    return
  }
  const body = await res.json()
  results.replaceChildren(...body.restaurants.map(card))
  say(body.count ? `${body.count} ${body.count === 1 ? 'place' : 'places'} for ${body.for}.` : 'Nothing matches. Try another cuisine or budget.')
}

async function vote(r, btn) {
  btn.disabled = true
  try {
    const res = await login.fetch(`${api()}/votes`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ restaurant: r.id }),
    })
    if (res.ok) {
      const v = await res.json()
      const el = results.querySelector(`li[data-id="${CSS.escape(r.id)}"] .votes`)
      if (el) el.textContent = `${v.votes} vote${v.votes === 1 ? '' : 's'}`
      say(`Voted for ${r.name}.`)
      return
    }
    const why = await refusal(res)
    if (why.code !== 'invalid_token') say(explain(why, 'vote'), 'warning')
  } catch (e) {
    say(`Could not vote (${e.code || e.message}).`, 'error')
  } finally {
    btn.disabled = false
  }
}

form.addEventListener('submit', (e) => {
  e.preventDefault()
  load()
})

login.addEventListener('keyless-authenticated', (e) => {
  showPlanner(true)
  previewBadge.hidden = !e.detail.preview
  load()
})

// The lease was revoked or expired (a 401 invalid_token from the sidecar,
// or a failed renewal): back to sign-in.
login.addEventListener('keyless-expired', (e) => {
  e.preventDefault() // the app says it, the element need not repeat it
  showPlanner(false, 'Your session ended: it expired or an admin revoked it. Sign in again to continue.')
})

login.addEventListener('keyless-state', (e) => {
  if (e.detail.status === 'signed_out') showPlanner(false, '') // the element says "Signed out."
})
