// One store's serial owner: instantiates the sync component once and implements its imports
// on DO SQLite (default) or D1 (`STORAGE = "d1"`), and on hibernatable WebSockets.
//
// Hibernation: sockets are accepted with `ctx.acceptWebSocket`, so the runtime may evict
// this object while they stay open. Each socket's attachment holds its connection info and
// the component's last saved state for it (`connections.save-state`); on wake the component
// is instantiated again and every socket is `resumed` with that state before the message
// that woke the object is handled. `{"_tag":"Ping"}` is answered by the runtime itself.
import { DurableObject } from 'cloudflare:workers'
import { instantiateSync } from './component.js'
import { doSqliteStorage } from './storage-do.js'
import { d1Storage } from './storage-d1.js'
import { tokenMatches } from './params.js'
import { HookRunner, hookEvent, outcomeMessage } from './hooks.js'
import { answerAdmin, d1Runner, doSqlRunner } from './admin.js'

/** A WebSocket attachment may hold at most 2 KiB; the payload and headers are dropped first. */
const MAX_ATTACHMENT = 2048

export class WebSocketServer extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env)
    this.handler = null
    this.instantiating = null
    /** conn id (string) → { ws, att } */
    this.conns = new Map()
    this.nextConn = 1
    this.queue = Promise.resolve()
    this.storage = env.STORAGE === 'd1' ? d1Storage(env.DB, ctx) : doSqliteStorage(ctx)
    this.hooks = HookRunner.fromEnv(env)
    /** The hook context of the HTTP-transport request being handled (conn 0). */
    this.httpContext = null
    /** This object's store id: kept in its own SQLite, not in every socket's 2 KiB attachment
     * (an id may take 1,024 bytes); read back after an eviction. */
    this.storeId = undefined
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"_tag":"Ping"}', '{"_tag":"Pong"}'))
  }

  /** Every component call goes through one queue: one store = one serial owner. */
  serial(f) {
    const p = this.queue.then(f)
    this.queue = p.catch(() => {})
    return p
  }

  imports() {
    const env = this.env
    const maxPush = Number(env.MAX_PUSH_EVENTS ?? 1000)
    return {
      storage: this.storage,
      connections: {
        send: (conn, frame) => {
          const c = this.conns.get(String(conn))
          if (!c) return
          try {
            c.ws.send(frame)
          } catch {}
        },
        close: (conn, code, reason) => {
          const c = this.conns.get(String(conn))
          if (!c) return
          try {
            c.ws.close(code, reason)
          } catch {}
        },
        saveState: (conn, state) => {
          const c = this.conns.get(String(conn))
          if (!c) return
          c.att.state = state
          saveAttachment(c.ws, c.att)
        },
        // Every message wakes the object anyway, and the list would have to survive
        // hibernation; the component's call for such a frame is a no-op, so nothing is dropped.
        setIgnoredFrames: () => {},
      },
      hooks: {
        loaded: () => ({ onPush: this.hooks.has('onPush'), onPull: this.hooks.has('onPull'), afterPush: this.hooks.has('afterPush') }),
        onPush: async (caller, batch) => {
          const ctx = this.hookContext(caller, batch)
          const refused = await this.hooks.onPush(ctx, batch.map(hookEvent))
          return refused === null ? { tag: 'ok', val: undefined } : { tag: 'err', val: outcomeMessage(refused) }
        },
        onPull: async (caller, cursor, live) => {
          const refused = await this.hooks.onPull(this.hookContext(caller, []), { cursor, live })
          return refused === null ? { tag: 'ok', val: undefined } : { tag: 'err', val: outcomeMessage(refused) }
        },
        afterPush: (caller, batch) => {
          const ctx = this.hookContext(caller, batch)
          const events = batch.map(hookEvent)
          const createdAt = batch[0]?.createdAt ?? ''
          // Off the push's path (the ack does not wait) and in commit order: each batch's hooks
          // start when the previous batch's are done. Failures are logged.
          this.afterPushChain = (this.afterPushChain ?? Promise.resolve()).then(async () => {
            const failed = await this.hooks.afterPush(ctx, events, createdAt)
            if (failed !== null) console.warn(`after-push hook: ${outcomeMessage(failed)}`)
          })
          this.ctx.waitUntil(this.afterPushChain)
        },
      },
      auth: { checkToken: (token) => !env.AUTH_TOKEN || tokenMatches(token, env.AUTH_TOKEN) },
      telemetry: {
        report: () => {},
        log: (level, message) => {
          if (level === 'debug' && !env.DEBUG) return
          ;(console[level] ?? console.log)(message)
        },
      },
      config: { get: () => ({ maxPushEvents: maxPush }) },
    }
  }

  /** Remember the store id a routed request carries (written once per object). */
  rememberStoreId(storeId) {
    if (this.knownStoreId() === storeId) return
    const sql = this.ctx.storage.sql
    sql.exec('CREATE TABLE IF NOT EXISTS livestore_sync_object (id INTEGER PRIMARY KEY CHECK (id = 1), storeId TEXT NOT NULL) STRICT')
    sql.exec('INSERT OR REPLACE INTO livestore_sync_object (id, storeId) VALUES (1, ?)', storeId)
    this.storeId = storeId
  }

  knownStoreId() {
    if (this.storeId === undefined) {
      try {
        this.storeId = this.ctx.storage.sql.exec('SELECT storeId FROM livestore_sync_object').toArray()[0]?.storeId
      } catch {
        this.storeId = undefined
      }
    }
    return this.storeId
  }

  /** What hooks learn about the caller: a connection, or the HTTP request being handled. */
  hookContext(caller, batch) {
    const att = caller.tag === 'http-request' ? this.httpContext : this.conns.get(String(caller.val))?.att
    return {
      storeId: att?.storeId ?? this.knownStoreId() ?? '',
      clientId: att?.clientId ?? batch[0]?.clientId,
      payload: att?.payload ?? undefined,
      headers: att?.headers ?? [],
    }
  }

  /** The component, instantiated on first use; after a wake every open socket is resumed. */
  async component() {
    if (this.handler) return this.handler
    this.instantiating ??= (async () => {
      const handler = await instantiateSync(this.imports())
      this.conns.clear()
      for (const ws of this.ctx.getWebSockets()) {
        const att = ws.deserializeAttachment()
        if (!att) continue
        this.conns.set(att.conn, { ws, att })
        this.nextConn = Math.max(this.nextConn, Number(att.conn) + 1)
      }
      for (const { ws, att } of [...this.conns.values()]) {
        try {
          const info = connectionInfo(att, this.knownStoreId())
          if (att.state) await handler.resumed(info, att.state)
          else await handler.opened(info)
        } catch (e) {
          this.conns.delete(att.conn)
          closeQuietly(ws, 1011, `could not resume: ${errorText(e)}`)
        }
      }
      this.handler = handler
      return handler
    })().finally(() => {
      this.instantiating = null
    })
    return this.instantiating
  }

  /** A trap poisons the instance: drop it and its sockets (clients reconnect to a fresh one). */
  fail(e) {
    console.error(`sync component failed: ${errorText(e)}`)
    this.handler = null
    for (const { ws } of this.conns.values()) closeQuietly(ws, 1011, 'store failed; reconnect')
    this.conns.clear()
  }

  /** Forget everything in memory, as an eviction does; the sockets stay open. */
  evict() {
    this.handler = null
    this.conns.clear()
    this.nextConn = 1
  }

  async fetch(request) {
    const info = JSON.parse(decodeURIComponent(request.headers.get('x-livestore-sync-connection') ?? 'null'))
    if (!info) return new Response('not routed by the worker\n', { status: 400 })
    this.rememberStoreId(info.storeId)
    if (request.headers.get('upgrade')?.toLowerCase() === 'websocket') return this.serial(() => this.accept(info))
    const body = await request.text()
    return this.serial(async () => {
      try {
        const handler = await this.component()
        this.httpContext = info
        const json = await handler.httpRequest(info.storeId, body)
        return new Response(json, { headers: { 'content-type': 'application/json' } })
      } catch (e) {
        this.fail(e)
        return new Response(`${errorText(e)}\n`, { status: 500 })
      }
    })
  }

  /** Tests only (the Worker calls it for `/__test/evict` when LIVESTORE_SYNC_TEST_ROUTES is set). */
  async evictForTest() {
    return this.serial(() => this.evict())
  }

  /** The per-store admin API (src/admin.js), an RPC only the Worker calls, in the store's serial order. */
  async admin(op) {
    return this.serial(() => this.adminNow(op))
  }

  async adminNow(op) {
    const known = this.knownStoreId()
    if (known !== undefined && known !== op.storeId) return { status: 400, body: `this object serves another store than ${JSON.stringify(op.storeId)}` }
    const run = this.env.STORAGE === 'd1' ? d1Runner(this.env.DB) : doSqlRunner(this.ctx)
    let conns = []
    if (op.action === 'connections') {
      // The component counts each connection's pulls: wake it (resuming the sockets) to ask.
      let handler = null
      try {
        handler = await this.component()
      } catch (e) {
        this.fail(e)
      }
      conns = this.ctx.getWebSockets().map((ws) => ws.deserializeAttachment()).filter(Boolean).map((att) => {
        let openPulls = null
        try {
          openPulls = handler?.openPulls(BigInt(att.conn)) ?? null
        } catch {}
        return { ...att, openPulls }
      })
    }
    return answerAdmin(op, run, conns, () => {
      // The component caches head and backend id: drop it, and send the store's clients to
      // reconnect; finding a new backend id, they re-sync.
      for (const ws of this.ctx.getWebSockets()) closeQuietly(ws, 1012, 'store was reset')
      this.evict()
    })
  }

  async accept(info) {
    let handler
    try {
      handler = await this.component()
    } catch (e) {
      this.fail(e)
      return new Response(`store could not be opened: ${errorText(e)}\n`, { status: 500 })
    }
    const pair = new WebSocketPair()
    const [client, server] = Object.values(pair)
    const conn = String(this.nextConn++)
    const { storeId, ...rest } = info
    const att = { conn, ...rest, connectedAt: Date.now(), state: null }
    this.ctx.acceptWebSocket(server)
    saveAttachment(server, att)
    this.conns.set(conn, { ws: server, att })
    try {
      await handler.opened(connectionInfo(att, storeId))
    } catch (e) {
      this.conns.delete(conn)
      closeQuietly(server, 1011, 'refused')
      if (e?.payload === undefined) this.fail(e)
      return new Response(`${e?.payload ?? errorText(e)}\n`, { status: 400 })
    }
    return new Response(null, { status: 101, webSocket: client })
  }

  async webSocketMessage(ws, message) {
    const text = typeof message === 'string' ? message : new TextDecoder().decode(message)
    await this.serial(async () => {
      try {
        const handler = await this.component()
        const att = ws.deserializeAttachment()
        if (!att || !this.conns.has(att.conn)) return
        await handler.frame(BigInt(att.conn), text)
      } catch (e) {
        this.fail(e)
      }
    })
  }

  async webSocketClose(ws, code, reason) {
    closeQuietly(ws, code === 1005 || code === 1006 ? 1000 : code, reason)
    await this.ended(ws)
  }

  async webSocketError(ws) {
    await this.ended(ws)
  }

  async ended(ws) {
    await this.serial(async () => {
      const att = ws.deserializeAttachment()
      if (!att) return
      // A socket closing while the object slept: wake the component so its other
      // sockets are resumed, then forget this one.
      try {
        const handler = await this.component()
        if (this.conns.delete(att.conn)) await handler.closed(BigInt(att.conn))
      } catch (e) {
        this.fail(e)
      }
    })
  }
}

/** `att.storeId`: attachments written before the store id moved to the object's SQLite. */
function connectionInfo(att, storeId) {
  return {
    conn: BigInt(att.conn),
    storeId: att.storeId ?? storeId,
    protocol: att.protocol,
    authenticated: att.authenticated,
    clientId: att.clientId ?? undefined,
    payload: att.payload ?? undefined,
    headers: att.headers ?? [],
  }
}

function saveAttachment(ws, att) {
  if (JSON.stringify(att).length > MAX_ATTACHMENT) {
    // Payload and headers only matter at connect time; the resumable state must survive.
    att = { ...att, payload: undefined, headers: [] }
  }
  ws.serializeAttachment(att)
}

function closeQuietly(ws, code, reason) {
  try {
    ws.close(code, reason.slice(0, 120))
  } catch {}
}

const errorText = (e) => (e?.payload !== undefined ? String(e.payload) : e instanceof Error ? e.message : String(e))
