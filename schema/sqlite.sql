-- The worker's SQLite layout (DO SQLite and D1): `@livestore/sync-cf`'s format 7 (`context_7`
-- and one `eventlog_7_<name>` per store) plus livestore-sync's own metadata.
-- cloudflare/scripts/build.mjs turns it into gen/schema.js; the native server, whose layout is
-- schema/native-sqlite.sql, reads it (host/src/schema.rs) only to test the migration of its
-- older data directories, which used this layout. Each statement follows a
-- `-- name:` line; statements are bound with parameters, never built from input. The only
-- identifier spliced in is `{table}`, an event-log table name claimed by `claim_table` and
-- quoted by the caller.

-- name: metadata
CREATE TABLE IF NOT EXISTS "context_7" ("storeId" text primary key, "currentHead" integer not null, "backendId" text not null) strict;
CREATE TABLE IF NOT EXISTS livestore_sync_stores (storeId TEXT PRIMARY KEY, tableName TEXT NOT NULL UNIQUE, formatVersion INTEGER NOT NULL, createdAt TEXT NOT NULL, lastSyncAt TEXT, totalEvents INTEGER NOT NULL DEFAULT 0) STRICT;
CREATE TABLE IF NOT EXISTS livestore_sync_event_ids (storeId TEXT NOT NULL, eventId TEXT NOT NULL, seqNum INTEGER NOT NULL, PRIMARY KEY (storeId, eventId)) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS livestore_sync_event_ids_seq ON livestore_sync_event_ids (storeId, seqNum);
CREATE INDEX IF NOT EXISTS livestore_sync_stores_table_nocase ON livestore_sync_stores (tableName COLLATE NOCASE);

-- name: event_log_table
CREATE TABLE IF NOT EXISTS {table} ("seqNum" integer primary key, "parentSeqNum" integer not null, "name" text not null, "args" text, "createdAt" text not null, "clientId" text not null, "sessionId" text not null) strict;

-- name: claim_table
-- The table-name rule, in one statement so two writers cannot both win. Binds: ?1 store id,
-- ?2 candidate name (first `@livestore/sync-cf`'s name, then the encoded one), ?3 1 when the
-- store was written by `@livestore/sync-cf` (it has a head but no claim: that table is its
-- own), else 0. The candidate is taken only when no store has claimed it and no table by that
-- name exists, compared as SQLite compares identifiers (ASCII case-insensitively). Claimed
-- when one row changed.
INSERT OR IGNORE INTO livestore_sync_stores (storeId, tableName, formatVersion, createdAt)
SELECT ?1, ?2, 7, strftime('%Y-%m-%dT%H:%M:%fZ','now')
WHERE NOT EXISTS (SELECT 1 FROM livestore_sync_stores WHERE tableName = ?2 COLLATE NOCASE)
AND (?3 OR NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = ?2 COLLATE NOCASE));
