// livestore-sync on Cloudflare: the Worker routes each sync request to its store's Durable
// Object (`WEBSOCKET_SERVER`, one object per storeId, like `@livestore/sync-cf`) after checking the
// store id and the payload's token; the object runs the sync component (src/durable-object.js).
import { bearerToken, payloadToken, storeIdError, syncParams, tokenMatches } from './params.js'
import { GUEST_SHA256 } from '../gen/meta.js'
import { HookRunner, outcomeMessage } from './hooks.js'
import { corsPolicy, preflight, refuseOrigin, withCors } from './cors.js'
import { routeAdmin } from './admin.js'

let hooks = null
/** `STORE_ID_PATTERN` (a stricter rule for connecting clients), compiled once. */
let storeIdPattern

import { WebSocketServer } from './durable-object.js'

export { WebSocketServer }
/** `@livestore/sync-cf`'s class name: deploying this worker in place of `@livestore/sync-cf` under the
 * same class keeps each store's Durable Object storage (and its backend id). */
export const SyncBackendDO = WebSocketServer

const INFO =
  'Info: livestore-sync, a LiveStore sync backend (wire-compatible with @livestore/sync-cf). Connect with ?storeId=…&payload=…&transport=ws\n'

const text = (status, body) => new Response(body, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } })
const invalidToken = () => text(400, "Invalid auth token: the payload's authToken does not match the server's token\n")

export default {
  async fetch(request, env) {
    const policy = corsPolicy(env)
    if (policy.enabled && request.method === 'OPTIONS') return withCors(request, preflight(request), policy)
    const refused = refuseOrigin(request, policy)
    if (refused !== null) return refused
    return withCors(request, await route(request, env), policy)
  },
}

/** Everything but CORS: test routes, the info and health pages, admission, then the store's object. */
async function route(request, env) {
  const url = new URL(request.url)
  const params = syncParams(url)
  const upgrade = (request.headers.get('upgrade') ?? '').toLowerCase() === 'websocket'
  if (env.LIVESTORE_SYNC_TEST_ROUTES === '1' && url.pathname === '/__test/evict' && params.storeId) {
    // Tests only: make the store's object drop its in-memory state as a hibernation
    // eviction does, while its sockets stay open.
    const stub = env.WEBSOCKET_SERVER.get(env.WEBSOCKET_SERVER.idFromName(params.storeId))
    await stub.evictForTest()
    return text(200, 'evicted\n')
  }
  if (env.STORAGE === 'd1' && !env.DB) {
    // A misconfiguration, not a client error: say how to fix it instead of failing inside the object.
    return text(500, 'STORAGE is "d1" but no D1 database is bound as DB: run with --env d1 (wrangler.toml [env.d1])\n')
  }
  if (!params.transport && (url.pathname === '/admin' || url.pathname.startsWith('/admin/'))) {
    return routeAdmin(request, env, url, (id) => storeIdError({ ok: id }, null))
  }
  if (params.unknownTransport !== null) {
    return text(400, `Unknown transport ${JSON.stringify(params.unknownTransport)}: use transport=ws or transport=http (none for the simple protocol)\n`)
  }
  if (!params.transport && !(upgrade && params.storeIdRaw)) {
    const read = request.method === 'GET' || request.method === 'HEAD'
    if (url.pathname === '/') return read ? text(200, INFO) : text(405, '/ takes GET or HEAD\n')
    if (url.pathname === '/health') return read ? text(200, `ok\ncomponent sha256 ${GUEST_SHA256}\n`) : text(405, '/health takes GET or HEAD\n')
    return text(404, 'Not found: expected a sync request (?storeId=…&payload=…&transport=ws|http) or /health\n')
  }
  try {
    storeIdPattern ??= env.STORE_ID_PATTERN ? new RegExp(env.STORE_ID_PATTERN) : null
  } catch (e) {
    return text(500, `STORE_ID_PATTERN is not a valid regular expression: ${e.message}\n`)
  }
  const refusedId = storeIdError(params.storeIdRaw, storeIdPattern)
  if (refusedId !== null) return text(400, `${refusedId}\n`)
  if (params.transport && params.payload?.raw !== undefined) {
    return text(400, `payload is not URL-encoded JSON: ${JSON.stringify(params.payload.raw)}\n`)
  }
  // The same order of checks as natively: store id, payload, transport, token, hooks.
  if (params.transport === 'ws' && !upgrade) return text(426, 'Expected Upgrade: websocket (transport=ws)\n')
  if (params.transport === 'http' && request.method !== 'POST') return text(405, 'the HTTP transport takes POST\n')
  const expected = env.AUTH_TOKEN || undefined
  let protocol = 'livestore'
  let authenticated = true
  if (!params.transport) {
    // The simple JSON protocol; the token may also arrive in the first message.
    protocol = 'simple'
    const presented = params.token ?? payloadToken(params) ?? bearerToken(request)
    if (expected !== undefined) {
      if (presented === undefined) authenticated = false
      else if (!tokenMatches(presented, expected)) return invalidToken()
    }
  } else if (expected !== undefined && !tokenMatches(payloadToken(params), expected)) {
    return invalidToken()
  }

  const forward = (env.FORWARD_HEADERS ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean)
  const info = {
    storeId: params.storeId,
    // What the admin API shows about a connection.
    peer: request.headers.get('cf-connecting-ip') ?? request.headers.get('x-real-ip') ?? undefined,
    protocol,
    authenticated,
    clientId: params.clientId,
    payload: params.payload ? JSON.stringify(params.payload.ok) : undefined,
    headers: forward.flatMap((h) => (request.headers.has(h) ? [[h, request.headers.get(h)]] : [])),
  }
  hooks ??= HookRunner.fromEnv(env)
  if (hooks.has('validatePayload')) {
    // Hooks also see Authorization, where curl users send the token.
    const seen = [...info.headers]
    const auth = request.headers.get('authorization')
    if (auth !== null && !seen.some(([k]) => k === 'authorization')) seen.push(['authorization', auth])
    const refused = await hooks.validatePayload(params.storeId, info.payload, seen)
    // A hook's refusal is the client's problem (400); a hook that broke is the server's (500).
    if (refused !== null) return text(refused.failed ? 500 : 400, `${outcomeMessage(refused)}\n`)
  }
  const stub = env.WEBSOCKET_SERVER.get(env.WEBSOCKET_SERVER.idFromName(params.storeId))
  const headers = new Headers(request.headers)
  // Header values are bytes: percent-encode so any store id (unicode included) gets through.
  headers.set('x-livestore-sync-connection', encodeURIComponent(JSON.stringify(info)))
  return stub.fetch(new Request(request, { headers }))
}
