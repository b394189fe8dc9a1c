// The storage layout both homes share: the DDL and the table-name claim come from
// schema/sqlite.sql (via gen/schema.js); the queries below are this home's. Store ids are always
// bound as parameters; the only identifiers built are event-log table names from
// `referenceTableName` / `encodedTableName` (checked against schema/vectors.json, like the
// Rust in host/src/table_names.rs), always quoted.

import { EVENT_LOG_TABLE } from '../gen/schema.js'

export const FORMAT_VERSION = 7

/**
 * The name `@livestore/sync-cf` gives a store's table: every non-alphanumeric UTF-16 unit
 * becomes `_`, so `a-b`, `a_b` and `a b` share it, and SQLite, which compares identifiers
 * without regard to ASCII case, also treats `Abc` and `abc` as one table.
 */
export const referenceTableName = (storeId) => `eventlog_${FORMAT_VERSION}_${storeId.replaceAll(/[^a-zA-Z0-9]/g, '_')}`

/** A name no other store id produces and no reference name can equal (`-` is outside the
 * alphabet of `@livestore/sync-cf`'s names): the id's UTF-8 bytes in lowercase hex. */
export const encodedTableName = (storeId) =>
  `eventlog_${FORMAT_VERSION}_x-${[...new TextEncoder().encode(storeId)].map((b) => b.toString(16).padStart(2, '0')).join('')}`

export const quoteIdent = (name) => `"${name.replaceAll('"', '""')}"`

export { METADATA_DDL, CLAIM_TABLE } from '../gen/schema.js'

export const eventLogDdl = (table) => EVENT_LOG_TABLE.replace('{table}', () => table)

export const SELECT_TABLE = 'SELECT tableName FROM livestore_sync_stores WHERE storeId = ?'
export const SELECT_CONTEXT = 'SELECT currentHead, backendId FROM context_7 WHERE storeId = ?'
export const INSERT_CONTEXT = 'INSERT OR IGNORE INTO context_7 (storeId, currentHead, backendId) VALUES (?, ?, ?)'
export const SET_HEAD = 'UPDATE context_7 SET currentHead = ? WHERE storeId = ?'
export const maxSeq = (table) => `SELECT MAX(seqNum) AS m FROM ${table}`
export const countAfter = (table) => `SELECT COUNT(*) AS n FROM ${table} WHERE seqNum > ?`
export const seqAtTime = (table) => `SELECT MAX(seqNum) AS m FROM ${table} WHERE createdAt <= ?`
export const readAfter = (table) =>
  `SELECT e.seqNum, e.parentSeqNum, e.name, e.args, e.createdAt, e.clientId, e.sessionId, i.eventId FROM ${table} e ` +
  'LEFT JOIN livestore_sync_event_ids i ON i.storeId = ? AND i.seqNum = e.seqNum WHERE e.seqNum > ? ORDER BY e.seqNum ASC LIMIT ?'
export const FIND_EVENT_ID = 'SELECT seqNum FROM livestore_sync_event_ids WHERE storeId = ? AND eventId = ?'
export const insertEvent = (table) =>
  `INSERT INTO ${table} (seqNum, parentSeqNum, name, args, createdAt, clientId, sessionId) VALUES (?, ?, ?, ?, ?, ?, ?)`
export const INSERT_EVENT_ID = 'INSERT INTO livestore_sync_event_ids (storeId, eventId, seqNum) VALUES (?, ?, ?)'
export const TOUCH_STORE =
  'UPDATE livestore_sync_stores SET lastSyncAt = ?, totalEvents = totalEvents + ? WHERE storeId = ?'

/** A stored row → the component's `event-row` (s64 fields are BigInts in jco's glue). */
export const toEventRow = (r) => ({
  seqNum: BigInt(r.seqNum),
  parentSeqNum: BigInt(r.parentSeqNum),
  name: r.name,
  args: r.args ?? undefined,
  createdAt: r.createdAt,
  clientId: r.clientId,
  sessionId: r.sessionId,
  eventId: r.eventId ?? undefined,
})

export const eventParams = (e) => [
  Number(e.seqNum),
  Number(e.parentSeqNum),
  e.name,
  e.args ?? null,
  e.createdAt,
  e.clientId,
  e.sessionId,
]

/** jco's convention for a `result` an import returns. */
export const ok = (val) => ({ tag: 'ok', val })
export const err = (e) => ({ tag: 'err', val: e instanceof Error ? e.message : String(e) })

/** Thrown by an append whose expected head is no longer the stored one. */
export class HeadMoved extends Error {
  constructor(head) {
    super(`the stored head moved to ${head}; batch not written`)
    this.head = head
  }
}

/** `append-batch`'s typed error (`append-error`): the head moved, or storage failed. */
export const appendErr = (e) => ({
  tag: 'err',
  val: e instanceof HeadMoved
    ? { tag: 'head-moved', val: BigInt(e.head) }
    : { tag: 'storage-failed', val: e instanceof Error ? e.message : String(e) },
})
