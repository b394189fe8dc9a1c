// `livestore:sync/storage` on the Durable Object's own SQLite (`ctx.storage.sql`): synchronous,
// one store per object, a batch is one `transactionSync`.
import * as Q from './sql.js'

export function doSqliteStorage(ctx) {
  const sql = ctx.storage.sql
  const tables = new Map()
  let ready = false
  const setup = () => {
    if (ready) return
    for (const ddl of Q.METADATA_DDL) sql.exec(ddl)
    ready = true
  }
  const tableFor = (storeId) => {
    const known = tables.get(storeId)
    if (known) return known
    setup()
    const name = ctx.storage.transactionSync(() => {
      const existing = sql.exec(Q.SELECT_TABLE, storeId).toArray()[0]
      if (existing) return existing.tableName
      // The `@livestore/sync-cf` name when nothing can share it, else the encoded one (sql.js).
      const writtenByReference = sql.exec(Q.SELECT_CONTEXT, storeId).toArray().length ? 1 : 0
      for (const [candidate, own] of [[Q.referenceTableName(storeId), writtenByReference], [Q.encodedTableName(storeId), 0]]) {
        sql.exec(Q.CLAIM_TABLE, storeId, candidate, own)
        const claimed = sql.exec(Q.SELECT_TABLE, storeId).toArray()[0]
        if (claimed) return claimed.tableName
      }
      throw new Error(`no free event-log table name for store ${JSON.stringify(storeId)}`)
    })
    const quoted = Q.quoteIdent(name)
    sql.exec(Q.eventLogDdl(quoted))
    tables.set(storeId, quoted)
    return quoted
  }
  const guard = (f) => (...args) => {
    try {
      return Q.ok(f(...args))
    } catch (e) {
      return Q.err(e)
    }
  }
  return {
    initStore: guard((storeId, freshBackendId) => {
      const table = tableFor(storeId)
      return ctx.storage.transactionSync(() => {
        sql.exec(Q.INSERT_CONTEXT, storeId, 0, freshBackendId)
        let { currentHead: head, backendId } = sql.exec(Q.SELECT_CONTEXT, storeId).one()
        // Rows past the stored head (`@livestore/sync-cf`'s non-atomic inserts) are visible to
        // pulls, so the head must cover them.
        const max = sql.exec(Q.maxSeq(table)).one().m
        if (max !== null && max > head) {
          sql.exec(Q.SET_HEAD, max, storeId)
          head = max
        }
        return { head: BigInt(head), backendId }
      })
    }),
    appendBatch: (storeId, expectedHead, events) => {
      try {
        if (events.length === 0) return Q.ok(undefined)
        const table = tableFor(storeId)
        ctx.storage.transactionSync(() => {
          const head = sql.exec(Q.SELECT_CONTEXT, storeId).one().currentHead
          if (BigInt(head) !== expectedHead) throw new Q.HeadMoved(head)
          const insert = Q.insertEvent(table)
          for (const e of events) sql.exec(insert, ...Q.eventParams(e))
          for (const e of events) if (e.eventId !== undefined) sql.exec(Q.INSERT_EVENT_ID, storeId, e.eventId, Number(e.seqNum))
          const last = events[events.length - 1]
          sql.exec(Q.SET_HEAD, Number(last.seqNum), storeId)
          sql.exec(Q.TOUCH_STORE, last.createdAt, events.length, storeId)
        })
        return Q.ok(undefined)
      } catch (e) {
        return Q.appendErr(e)
      }
    },
    findEventIds: guard((storeId, ids) => {
      setup()
      return ids.map((id) => {
        const row = sql.exec(Q.FIND_EVENT_ID, storeId, id).toArray()[0]
        return row ? BigInt(row.seqNum) : undefined
      })
    }),
    seqAtTime: guard((storeId, timestamp) => BigInt(sql.exec(Q.seqAtTime(tableFor(storeId)), timestamp).one().m ?? 0)),
    countAfter: guard((storeId, cursor) => BigInt(sql.exec(Q.countAfter(tableFor(storeId)), Number(cursor)).one().n)),
    readAfter: guard((storeId, cursor, limit) =>
      sql.exec(Q.readAfter(tableFor(storeId)), storeId, Number(cursor), limit).toArray().map(Q.toEventRow),
    ),
  }
}
