// The per-store admin API on Cloudflare (README, "Operator console and admin API"): info,
// events, connections and reset, answered by the store's Durable Object in the native server's
// shapes. What needs every store at once (the store list, the overview) or a long-lived stream
// (export, import, live tail) is native only: a Durable Object knows only its own store.
import * as Q from './sql.js'

export const EVENTS_PAGE = 100
export const EVENTS_PAGE_MAX = 1000
const MAX_SEQ_NUM = 2 ** 53 - 1

const json = (status, body) => new Response(body, {
  status,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
})
const text = (status, body) => new Response(`${body}\n`, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } })
/** What the object's `admin` RPC returns: a status and the JSON (200) or error text. */
const answer = (status, body) => ({ status, body: typeof body === 'string' ? body : JSON.stringify(body) })

/** A whole-number query parameter within [min, max], `fallback` when absent; or an error text. */
function number(url, name, fallback, min, max) {
  const raw = url.searchParams.get(name)
  if (raw === null) return { value: fallback }
  const n = /^-?\d+$/.test(raw) ? Number(raw) : NaN
  return Number.isSafeInteger(n) && n >= min && n <= max ? { value: n } : { error: `${name}=${JSON.stringify(raw)}: expected a number from ${min} to ${max}` }
}

/**
 * The Worker's side: check the secret and the route, then hand `{ action, storeId, … }` to the
 * store's object. `storeIdError` is the Worker's store-id rule.
 */
export async function routeAdmin(request, env, url, storeIdError) {
  if (!env.ADMIN_SECRET) return text(404, 'the admin API is disabled (set the ADMIN_SECRET secret)')
  const parts = url.pathname.replace(/\/+$/, '').split('/')
  const [, , collection, segment, sub] = parts
  const known = collection === 'stores' && segment !== undefined && parts.length <= 5
  const action =
    !known ? null
    : request.method === 'GET' && sub === undefined ? 'info'
    : request.method === 'GET' && sub === 'events' ? 'events'
    : request.method === 'GET' && sub === 'connections' ? 'connections'
    : request.method === 'POST' && sub === 'reset' ? 'reset'
    : null
  if (action === null) {
    return text(404, `${request.method} ${url.pathname} is not available on Cloudflare: this worker answers GET /admin/stores/{id}[/events|/connections] and POST /admin/stores/{id}/reset (the store list, overview, export, import, live tail and console need the native server)`)
  }
  const auth = (request.headers.get('authorization') ?? '').trim()
  const presented = /^bearer\s+/i.test(auth) ? auth.replace(/^bearer\s+/i, '').trim() : undefined
  if (presented === undefined || !(await secretMatches(presented, env.ADMIN_SECRET))) {
    return text(401, 'admin endpoints need Authorization: Bearer <admin secret>')
  }
  let storeId
  try {
    storeId = decodeURIComponent(segment)
  } catch {
    return text(400, 'invalid storeId: not UTF-8')
  }
  const refused = storeIdError(storeId)
  if (refused !== null) return text(400, refused)
  const op = { action, storeId }
  if (action === 'events') {
    const after = number(url, 'after', 0, 0, MAX_SEQ_NUM)
    const limit = number(url, 'limit', EVENTS_PAGE, 1, EVENTS_PAGE_MAX)
    const error = after.error ?? limit.error
    if (error) return text(400, error)
    Object.assign(op, { after: after.value, limit: limit.value })
  }
  // A Durable Object RPC call, which only this Worker can make (a header on a forwarded
  // request could be sent by any client).
  const stub = env.WEBSOCKET_SERVER.get(env.WEBSOCKET_SERVER.idFromName(storeId))
  const { status, body } = await stub.admin(op)
  return status === 200 ? json(200, body) : text(status, body)
}

/** Constant-time comparison of SHA-256 digests, as natively. */
async function secretMatches(presented, expected) {
  const digest = async (s) => new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s)))
  const [a, b] = await Promise.all([digest(presented), digest(expected)])
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i]
  return diff === 0
}

/**
 * SQL on this object's storage: `all(sql, ...binds)` → rows, and `batch([[sql, ...binds], …])`
 * in one transaction. DO SQLite is synchronous; D1 answers later.
 */
export function doSqlRunner(ctx) {
  const sql = ctx.storage.sql
  return {
    all: async (q, ...binds) => sql.exec(q, ...binds).toArray(),
    batch: async (statements) => ctx.storage.transactionSync(() => statements.map(([q, ...binds]) => sql.exec(q, ...binds).rowsWritten)),
  }
}

export function d1Runner(db) {
  return {
    all: async (q, ...binds) => (await db.prepare(q).bind(...binds).all()).results,
    batch: async (statements) => (await db.batch(statements.map(([q, ...binds]) => db.prepare(q).bind(...binds)))).map((r) => r.meta.changes),
  }
}

/** The store's head, backend id and table, or null when it does not exist here. */
async function storeRow(run, storeId) {
  try {
    const [context] = await run.all(Q.SELECT_CONTEXT, storeId)
    const [meta] = await run.all('SELECT tableName, lastSyncAt, formatVersion FROM livestore_sync_stores WHERE storeId = ?', storeId)
    if (!context || !meta) return null
    return { ...context, ...meta, table: Q.quoteIdent(meta.tableName) }
  } catch {
    // A fresh object has no tables yet: no store.
    return null
  }
}

/** One event in the native admin API's shape; `args` is the stored JSON text, byte for byte. */
const eventJson = (r) =>
  `{"seqNum":${r.seqNum},"parentSeqNum":${r.parentSeqNum},"name":${JSON.stringify(r.name)},"args":${r.args ?? 'null'},` +
  `"createdAt":${JSON.stringify(r.createdAt)},"clientId":${JSON.stringify(r.clientId)},"sessionId":${JSON.stringify(r.sessionId)}` +
  `${r.eventId ? `,"eventId":${JSON.stringify(r.eventId)}` : ''}}`

/**
 * The object's side. `conns` lists the open sockets' attachments; `afterReset` drops the
 * component (it caches head and backend id) and closes the sockets.
 */
export async function answerAdmin(op, run, conns, afterReset) {
  const store = await storeRow(run, op.storeId)
  if (store === null) return answer(404, `store ${JSON.stringify(op.storeId)} does not exist`)
  const head = Number(store.currentHead)
  switch (op.action) {
    case 'info': {
      const [{ n }] = await run.all(`SELECT COUNT(*) AS n FROM ${store.table}`)
      return answer(200, {
        storeId: op.storeId,
        table: store.tableName,
        head,
        backendId: store.backendId,
        eventCount: Number(n),
        lastSyncAt: store.lastSyncAt ?? null,
        formatVersion: Number(store.formatVersion),
      })
    }
    case 'events': {
      const rows = await run.all(Q.readAfter(store.table), op.storeId, op.after, op.limit)
      const next = rows.length === op.limit ? Number(rows[rows.length - 1].seqNum) : null
      const events = rows.map(eventJson).join(',')
      return answer(200, `{"storeId":${JSON.stringify(op.storeId)},"head":${head},"after":${op.after},"next":${next},"events":[${events}]}`)
    }
    case 'connections':
      return answer(200, {
        storeId: op.storeId,
        connections: conns.map((att) => ({
          conn: Number(att.conn),
          clientId: att.clientId ?? null,
          protocol: att.protocol,
          transport: 'ws',
          peer: att.peer ?? null,
          connectedAt: att.connectedAt ?? null,
          openPulls: att.openPulls ?? null,
        })),
      })
    case 'reset': {
      const [{ n }] = await run.all(`SELECT COUNT(*) AS n FROM ${store.table}`)
      const backendId = crypto.randomUUID().replaceAll('-', '').slice(0, 21)
      await run.batch([
        [`DELETE FROM ${store.table}`],
        ['DELETE FROM livestore_sync_event_ids WHERE storeId = ?', op.storeId],
        ['UPDATE context_7 SET currentHead = 0, backendId = ? WHERE storeId = ?', backendId, op.storeId],
        // lastSyncAt stays, as natively: the store was last synced then.
        ['UPDATE livestore_sync_stores SET totalEvents = 0 WHERE storeId = ?', op.storeId],
      ])
      afterReset()
      return answer(200, { storeId: op.storeId, removedEvents: Number(n), backendId })
    }
    default:
      return answer(400, `unknown admin action ${JSON.stringify(op.action)}`)
  }
}
