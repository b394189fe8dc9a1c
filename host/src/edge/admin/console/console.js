// The livestore-sync operator console: a small single-page app over the admin API
// (README, "Admin API"). Everything shown comes from the server's JSON and is put in the page
// as text, never as HTML: store ids and event args are user data.
'use strict'

let csrf = null
let timer = null
let tail = null
/** Bumped on every navigation: a page still loading for an older route must not draw. */
let generation = 0
const $ = (id) => document.getElementById(id)

/** An element with attributes (`on*` are listeners) and children (strings become text). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c))
  return el
}

class ApiError extends Error {
  constructor(status, message) {
    super(message)
    this.status = status
  }
}

async function api(path, { method = 'GET', body } = {}) {
  const headers = {}
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf ?? ''
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' })
  const text = await res.text()
  if (res.status === 401 && path !== '/admin/session') {
    showSignIn()
    throw new ApiError(401, 'signed out')
  }
  if (!res.ok) throw new ApiError(res.status, text.trim() || res.statusText)
  return text ? JSON.parse(text) : null
}

const storePath = (id) => `/admin/stores/${encodeURIComponent(id)}`
const fmtNumber = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '—')
const fmtTime = (ms) => (ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '—')
function fmtUptime(s) {
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60)
  return d ? `${d} d ${hr} h` : hr ? `${hr} h ${m} min` : `${m} min ${s % 60} s`
}
function prettyArgs(args) {
  try {
    return JSON.stringify(args, null, 2)
  } catch {
    return String(args)
  }
}

function stopLive() {
  clearInterval(timer)
  timer = null
  if (tail) tail.close()
  tail = null
}

class Stale extends Error {}

/** Throws when the user navigated away since `mine` was taken. */
function current(mine) {
  if (mine !== generation) throw new Stale()
}

function render(...nodes) {
  $('view').replaceChildren(...nodes)
}

function failure(e) {
  if (e instanceof Stale || (e instanceof ApiError && e.status === 401)) return
  render(h('p', { class: 'error', role: 'alert' }, `Error: ${e.message}`))
}

// ---- sign-in ------------------------------------------------------------------------------

function showSignIn() {
  stopLive()
  csrf = null
  $('nav').hidden = true
  $('view').replaceChildren()
  $('sign-in').hidden = false
  $('secret').focus()
}

async function signIn(event) {
  event.preventDefault()
  $('sign-in-error').textContent = ''
  try {
    const r = await api('/admin/session', { method: 'POST', body: { secret: $('secret').value } })
    csrf = r.csrf
    $('secret').value = ''
    $('sign-in').hidden = true
    $('nav').hidden = false
    route()
  } catch (e) {
    $('sign-in-error').textContent = e.status === 401 ? 'That is not the admin secret.' : `Sign-in failed: ${e.message}`
  }
}

async function signOut() {
  try {
    await api('/admin/session', { method: 'DELETE' })
  } finally {
    location.hash = '#/'
    showSignIn()
  }
}

// ---- overview -----------------------------------------------------------------------------

/** An SVG element (the `h` above makes HTML ones). */
function svg(tag, attrs = {}) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  return el
}

/** Pushes/s and events/s over the sampled window (5 minutes), newest at the right edge. */
function chart(samples, sampleSeconds, slots) {
  const w = 600, hgt = 150, pad = 6
  const max = Math.max(1, ...samples.map((s) => Math.max(s.pushesPerSecond, s.eventsPerSecond)))
  const step = (w - 2 * pad) / Math.max(1, slots - 1)
  const x = (i) => w - pad - (samples.length - 1 - i) * step
  const y = (v) => hgt - pad - (v / max) * (hgt - 2 * pad)
  const last = samples.at(-1)
  const plot = svg('svg', {
    viewBox: `0 0 ${w} ${hgt}`,
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': `Now ${last.pushesPerSecond} pushes/s and ${last.eventsPerSecond} events/s; peak ${max} per second`,
  })
  for (const v of [0, max / 2, max]) plot.append(svg('line', { x1: pad, x2: w - pad, y1: y(v), y2: y(v), class: 'grid' }))
  for (const [key, cls] of [['eventsPerSecond', 'events'], ['pushesPerSecond', 'pushes']]) {
    const points = samples.map((s, i) => `${x(i)},${y(s[key])}`).join(' ')
    plot.append(svg('polyline', { fill: 'none', stroke: 'currentColor', 'stroke-width': 2, class: cls, points }))
  }
  const span = slots * sampleSeconds
  return h(
    'div',
    { class: 'chart' },
    h('div', { class: 'legend' }, h('span', { class: 'pushes' }, `■ pushes/s (now ${fmtNumber(last.pushesPerSecond)})`), h('span', { class: 'events' }, `■ events/s (now ${fmtNumber(last.eventsPerSecond)})`), h('span', { class: 'muted' }, `top line: ${fmtNumber(max)} per second`)),
    plot,
    h('div', { class: 'axis muted' }, h('span', {}, `${span >= 60 ? `${Math.round(span / 60)} min` : `${span} s`} ago`), h('span', {}, 'now')),
  )
}

async function overview(mine) {
  const o = await api('/admin/overview')
  current(mine)
  const card = (label, value, title) => h('div', { class: 'card', title }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value))
  render(
    h('h1', {}, 'Overview'),
    h(
      'div',
      { class: 'cards' },
      card('Version', o.version),
      card('Component', o.component.slice(0, 10), `sha256 ${o.component}`),
      card('Uptime', fmtUptime(o.uptimeSeconds)),
      card('Connections', fmtNumber(o.connections)),
      card('Open stores', fmtNumber(o.openStores)),
      card('Pushes accepted', fmtNumber(o.pushesAccepted)),
      card('Events pushed', fmtNumber(o.eventsPushed)),
      card('Hook failures', fmtNumber(o.hookFailures)),
      card('Refused connections', fmtNumber(o.refusedConnections)),
    ),
    h('h2', {}, 'Activity'),
    o.activity.length ? chart(o.activity, o.sampleSeconds, o.sampleSlots) : h('p', { class: 'muted' }, `The chart fills in over the first minutes (one sample every ${o.sampleSeconds} s).`),
  )
}

// ---- stores -------------------------------------------------------------------------------

async function stores(params, mine) {
  const q = new URLSearchParams({ sort: params.get('sort') ?? 'lastSync', order: params.get('order') ?? (params.get('sort') === 'id' ? 'asc' : 'desc'), offset: params.get('offset') ?? '0', limit: '50' })
  if (params.get('prefix')) q.set('prefix', params.get('prefix'))
  const r = await api(`/admin/stores?${q}`)
  current(mine)
  const go = (changes) => {
    const next = new URLSearchParams(q)
    for (const [k, v] of Object.entries(changes)) next.set(k, v)
    location.hash = `#/stores?${next}`
  }
  const prefix = h('input', { id: 'prefix', type: 'search', value: params.get('prefix') ?? '', placeholder: 'store id prefix' })
  const sort = h('select', { id: 'sort' }, ...[['lastSync', 'Last sync'], ['events', 'Events'], ['id', 'Store id']].map(([v, t]) => h('option', { value: v, selected: v === q.get('sort') }, t)))
  const order = h('select', { id: 'order' }, h('option', { value: 'desc', selected: q.get('order') === 'desc' }, 'Descending'), h('option', { value: 'asc', selected: q.get('order') === 'asc' }, 'Ascending'))
  const form = h(
    'form',
    { class: 'toolbar', onsubmit: (e) => (e.preventDefault(), go({ prefix: prefix.value, sort: sort.value, order: order.value, offset: 0 })) },
    h('div', {}, h('label', { for: 'prefix' }, 'Filter'), prefix),
    h('div', {}, h('label', { for: 'sort' }, 'Sort by'), sort),
    h('div', {}, h('label', { for: 'order' }, 'Order'), order),
    h('button', { type: 'submit' }, 'Apply'),
  )
  const columns = ['Store id', 'Events', 'Head', 'Last sync']
  const rows = r.stores.map((s) => [h('a', { href: `#/store/${encodeURIComponent(s.storeId)}` }, s.storeId), fmtNumber(s.eventCount), fmtNumber(s.head), s.lastSyncAt ?? '—'])
  const offset = Number(q.get('offset'))
  render(
    h('h1', {}, 'Stores'),
    form,
    h('p', { class: 'muted' }, r.total ? `${offset + 1}–${offset + r.stores.length} of ${fmtNumber(r.total)}` : 'No stores match.'),
    table('stores', columns, rows),
    h(
      'div',
      { class: 'pager' },
      h('button', { type: 'button', class: 'secondary', disabled: offset === 0, onclick: () => go({ offset: Math.max(0, offset - r.limit) }) }, 'Previous'),
      h('button', { type: 'button', class: 'secondary', disabled: r.next === null, onclick: () => go({ offset: r.next }) }, 'Next'),
    ),
  )
}

// ---- one store ----------------------------------------------------------------------------

const PAGE = 50

/** A table that stacks each row's cells under their labels on narrow screens. */
function table(id, labels, rows) {
  const body = rows instanceof Node ? rows : h('tbody', {}, rows.map((cells) => row(labels, cells)))
  return h('div', { class: 'scroll' }, h('table', { id, class: 'stack' }, h('thead', {}, h('tr', {}, ...labels.map((c) => h('th', { scope: 'col' }, c)))), body))
}

function row(labels, cells) {
  return h('tr', {}, ...cells.map((c, i) => h('td', { 'data-label': labels[i], class: typeof c === 'string' && c.length > 24 ? 'wrap' : null }, c)))
}

const EVENT_COLUMNS = ['seqNum', 'parent', 'name', 'client', 'created', 'args']
const eventRow = (e) => row(EVENT_COLUMNS, [e.seqNum, e.parentSeqNum, e.name, e.clientId, e.createdAt, h('pre', {}, prettyArgs(e.args))])
const eventTable = (events, id) => table(id, EVENT_COLUMNS, h('tbody', {}, events.map(eventRow)))

const CONNECTION_COLUMNS = ['client', 'protocol', 'transport', 'open pulls', 'peer', 'connected since']
function connectionList(conns) {
  if (!conns.connections.length) return h('p', { class: 'muted', id: 'connections' }, 'No client is connected.')
  const el = table('connections', CONNECTION_COLUMNS, conns.connections.map((c) => [c.clientId ?? '—', c.protocol, c.transport, c.openPulls ?? '—', c.peer ?? '—', fmtTime(c.connectedAt)]))
  return el
}

async function store(id, params, mine) {
  const [info, conns] = await Promise.all([api(storePath(id)), api(`${storePath(id)}/connections`)])
  const after = params.has('after') ? Number(params.get('after')) : Math.max(0, info.head - PAGE)
  const page = await api(`${storePath(id)}/events?after=${after}&limit=${PAGE}`)
  current(mine)
  const goAfter = (a) => (location.hash = `#/store/${encodeURIComponent(id)}?after=${a}`)

  const tailBody = h('tbody', {})
  const tailStatus = h('p', { class: 'muted', id: 'tail-status' }, 'Connecting…')
  tail = new EventSource(`${storePath(id)}/tail`)
  // Each seqNum once: the page above holds everything up to info.head, and a batch committed
  // while following started arrives although `ready`'s head already counts it.
  let shownUpTo = info.head
  tail.addEventListener('ready', (m) => (tailStatus.textContent = `Following from head ${JSON.parse(m.data).head}: new pushes appear here.`))
  tail.addEventListener('events', (m) => {
    for (const e of JSON.parse(m.data)) {
      if (e.seqNum <= shownUpTo) continue
      shownUpTo = e.seqNum
      tailBody.prepend(eventRow(e))
    }
  })
  tail.addEventListener('reset', () => {
    shownUpTo = 0
    tailStatus.textContent = 'The store was reset.'
  })
  tail.addEventListener('lagged', (m) => (tailStatus.textContent = `Missed ${JSON.parse(m.data).missedBatches} batches (too many at once).`))
  tail.onerror = () => (tailStatus.textContent = 'Tail disconnected; retrying…')

  const typed = h('input', { id: 'confirm-id', autocomplete: 'off', 'aria-describedby': 'confirm-help' })
  const resetButton = h('button', { type: 'button', class: 'danger', disabled: true, id: 'confirm-reset' }, 'Reset this store')
  const resetResult = h('p', { role: 'status' })
  typed.addEventListener('input', () => (resetButton.disabled = typed.value !== id))
  resetButton.addEventListener('click', async () => {
    resetButton.disabled = true
    try {
      const r = await api(`${storePath(id)}/reset`, { method: 'POST' })
      resetResult.className = 'ok'
      resetResult.textContent = `Reset: ${fmtNumber(r.removedEvents)} events removed, new backend id ${r.backendId}. Connected clients were disconnected and will re-sync.`
    } catch (e) {
      resetResult.className = 'error'
      resetResult.textContent = `Reset failed: ${e.message}`
    }
  })
  const confirm = h(
    'div',
    { class: 'confirm', hidden: true, id: 'confirm' },
    h('p', { id: 'confirm-help' }, 'This deletes every event of this store and gives it a new backend id; clients must re-sync. Type the store id to confirm:'),
    h('label', { for: 'confirm-id' }, 'Store id'),
    typed,
    h('div', { class: 'pager' }, resetButton),
  )
  // Who is connected changes while the page is open: refreshed every 5 s.
  const connectionsTitle = h('h2', {}, `Connections (${conns.connections.length})`)
  let connections = connectionList(conns)
  timer = setInterval(async () => {
    try {
      const now = await api(`${storePath(id)}/connections`)
      connectionsTitle.textContent = `Connections (${now.connections.length})`
      const next = connectionList(now)
      connections.replaceWith(next)
      connections = next
    } catch {}
  }, 5000)
  const showConfirm = h('button', { type: 'button', class: 'danger', id: 'reset', onclick: () => ((confirm.hidden = false), typed.focus()) }, 'Reset…')

  render(
    h('h1', {}, id),
    h('dl', {}, h('dt', {}, 'Head'), h('dd', { id: 'head' }, info.head), h('dt', {}, 'Events'), h('dd', {}, fmtNumber(info.eventCount)), h('dt', {}, 'Backend id'), h('dd', {}, info.backendId), h('dt', {}, 'Last sync'), h('dd', {}, info.lastSyncAt ?? '—'), h('dt', {}, 'Created'), h('dd', {}, info.createdAt)),
    h('div', { class: 'toolbar' }, h('a', { href: `${storePath(id)}/export`, download: '', class: 'button' }, 'Export (JSON lines)'), showConfirm),
    confirm,
    resetResult,
    connectionsTitle,
    connections,
    h('h2', {}, 'Live tail'),
    tailStatus,
    h('div', { class: 'tail' }, table('tail', EVENT_COLUMNS, tailBody)),
    h('h2', {}, `Events ${page.events.length ? `${page.events[0].seqNum}–${page.events.at(-1).seqNum}` : ''} of ${info.head}`),
    page.events.length ? eventTable(page.events, 'events') : h('p', { class: 'muted' }, 'No events here.'),
    h(
      'div',
      { class: 'pager' },
      h('button', { type: 'button', class: 'secondary', disabled: after === 0, onclick: () => goAfter(Math.max(0, after - PAGE)) }, 'Earlier'),
      h('button', { type: 'button', class: 'secondary', disabled: page.next === null, onclick: () => goAfter(page.next) }, 'Later'),
    ),
  )
}

// ---- routing ------------------------------------------------------------------------------

async function route() {
  stopLive()
  const mine = ++generation
  const [path, query] = location.hash.replace(/^#/, '').split('?')
  const params = new URLSearchParams(query ?? '')
  try {
    if (path.startsWith('/store/')) await store(decodeURIComponent(path.slice('/store/'.length)), params, mine)
    else if (path === '/stores') await stores(params, mine)
    else {
      await overview(mine)
      timer = setInterval(() => overview(mine).catch(failure), 5000)
    }
    $('main').focus({ preventScroll: true })
  } catch (e) {
    failure(e)
  }
}

async function start() {
  $('sign-in-form').addEventListener('submit', signIn)
  $('sign-out').addEventListener('click', signOut)
  window.addEventListener('hashchange', route)
  try {
    const r = await api('/admin/session')
    csrf = r.csrf
    $('nav').hidden = false
    route()
  } catch {
    showSignIn()
  }
}

start()
