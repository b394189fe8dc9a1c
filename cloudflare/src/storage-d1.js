// `livestore:sync/storage` on D1 (binding `DB`): asynchronous, so the component is suspended
// through JSPI while D1 answers. One database holds every store; a batch is one `db.batch`
// (a single transaction) whose writes only apply while the stored head is still the expected
// one, so a stale writer changes nothing.
import * as Q from './sql.js'

export function d1Storage(db, ctx) {
  const tables = new Map()
  let ready = null
  const setup = () => (ready ??= db.batch(Q.METADATA_DDL.map((ddl) => db.prepare(ddl))).catch((e) => {
    ready = null
    throw e
  }))
  const tableFor = async (storeId) => {
    const known = tables.get(storeId)
    if (known) return known
    await setup()
    let name = (await db.prepare(Q.SELECT_TABLE).bind(storeId).first())?.tableName
    if (!name) {
      // The `@livestore/sync-cf` name when nothing can share it, else the encoded one (sql.js).
      const writtenByReference = referenceContext(storeId) !== null ? 1 : 0
      for (const [candidate, own] of [[Q.referenceTableName(storeId), writtenByReference], [Q.encodedTableName(storeId), 0]]) {
        await db.prepare(Q.CLAIM_TABLE).bind(storeId, candidate, own).run()
        name = (await db.prepare(Q.SELECT_TABLE).bind(storeId).first())?.tableName
        if (name) break
      }
      if (!name) throw new Error(`no free event-log table name for store ${JSON.stringify(storeId)}`)
    }
    const quoted = Q.quoteIdent(name)
    await db.prepare(Q.eventLogDdl(quoted)).run()
    tables.set(storeId, quoted)
    return quoted
  }
  const guard = (f) => async (...args) => {
    try {
      return Q.ok(await f(...args))
    } catch (e) {
      return Q.err(e)
    }
  }
  /** `@livestore/sync-cf` keeps head and backend id in the Durable Object's own SQLite, even with D1. */
  const referenceContext = (storeId) => {
    try {
      const sql = ctx.storage.sql
      if (!sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'context_7'").toArray().length) return null
      return sql.exec(Q.SELECT_CONTEXT, storeId).toArray()[0] ?? null
    } catch {
      return null
    }
  }
  /** One conditional `db.batch`: every write applies only while the stored head is the expected one. */
  const appendOnD1 = async (storeId, expectedHead, events) => {
    const table = await tableFor(storeId)
    const expected = Number(expectedHead)
    const last = events[events.length - 1]
    const headIs = ' WHERE (SELECT currentHead FROM context_7 WHERE storeId = ?) = ?'
    const stmts = []
    for (const e of events) {
      stmts.push(
        db.prepare(`INSERT INTO ${table} (seqNum, parentSeqNum, name, args, createdAt, clientId, sessionId) SELECT ?, ?, ?, ?, ?, ?, ?${headIs}`)
          .bind(...Q.eventParams(e), storeId, expected),
      )
      if (e.eventId !== undefined) {
        stmts.push(
          db.prepare(`INSERT INTO livestore_sync_event_ids (storeId, eventId, seqNum) SELECT ?, ?, ?${headIs}`)
            .bind(storeId, e.eventId, Number(e.seqNum), storeId, expected),
        )
      }
    }
    stmts.push(db.prepare(`${Q.TOUCH_STORE} AND (SELECT currentHead FROM context_7 WHERE storeId = ?) = ?`)
      .bind(last.createdAt, events.length, storeId, storeId, expected))
    stmts.push(db.prepare(`${Q.SET_HEAD} AND currentHead = ?`).bind(Number(last.seqNum), storeId, expected))
    const results = await db.batch(stmts)
    if (results[results.length - 1].meta.changes !== 1) {
      // Nothing was written: another writer moved the head.
      throw new Q.HeadMoved((await db.prepare(Q.SELECT_CONTEXT).bind(storeId).first())?.currentHead ?? expected)
    }
  }

  return {
    initStore: guard(async (storeId, freshBackendId) => {
      const table = await tableFor(storeId)
      const legacy = referenceContext(storeId)
      await db.prepare(Q.INSERT_CONTEXT).bind(storeId, legacy?.currentHead ?? 0, legacy?.backendId ?? freshBackendId).run()
      let { currentHead: head, backendId } = await db.prepare(Q.SELECT_CONTEXT).bind(storeId).first()
      const max = (await db.prepare(Q.maxSeq(table)).first())?.m ?? null
      if (max !== null && max > head) {
        await db.prepare(Q.SET_HEAD).bind(max, storeId).run()
        head = max
      }
      return { head: BigInt(head), backendId }
    }),
    appendBatch: async (storeId, expectedHead, events) => {
      try {
        if (events.length === 0) return Q.ok(undefined)
        await appendOnD1(storeId, expectedHead, events)
        return Q.ok(undefined)
      } catch (e) {
        return Q.appendErr(e)
      }
    },
    findEventIds: guard(async (storeId, ids) => {
      await setup()
      if (ids.length === 0) return []
      const rows = await db.batch(ids.map((id) => db.prepare(Q.FIND_EVENT_ID).bind(storeId, id)))
      return rows.map((r) => (r.results[0] ? BigInt(r.results[0].seqNum) : undefined))
    }),
    seqAtTime: guard(async (storeId, timestamp) =>
      BigInt((await db.prepare(Q.seqAtTime(await tableFor(storeId))).bind(timestamp).first())?.m ?? 0),
    ),
    countAfter: guard(async (storeId, cursor) =>
      BigInt((await db.prepare(Q.countAfter(await tableFor(storeId))).bind(Number(cursor)).first())?.n ?? 0),
    ),
    readAfter: guard(async (storeId, cursor, limit) => {
      const { results } = await db.prepare(Q.readAfter(await tableFor(storeId))).bind(storeId, Number(cursor), limit).all()
      return results.map(Q.toEventRow)
    }),
  }
}
