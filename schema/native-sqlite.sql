-- The native server's SQLite layout (layout 2): one row per store in `stores`, every store's
-- events in `events`, so a new store is a row, not a table (a table per store made every other
-- connection re-read the schema, and creating the 100,000th store cost far more than the
-- 10th). host/src/storage.rs reads this file with include_str!. Store ids are bound as
-- parameters; nothing here is built from input. The Cloudflare home keeps `@livestore/sync-cf`'s
-- format 7 (schema/sqlite.sql); a native data directory in that older layout is migrated once
-- at start (host/src/layout_migration.rs).

-- name: layout
-- `storeKey` (the rowid) keys the events: a store id can be a kilobyte, a key is a few bytes.
CREATE TABLE IF NOT EXISTS stores (
  storeKey INTEGER PRIMARY KEY,
  storeId TEXT NOT NULL UNIQUE,
  head INTEGER NOT NULL,
  backendId TEXT NOT NULL,
  createdAt TEXT NOT NULL,
  lastSyncAt TEXT,
  eventCount INTEGER NOT NULL DEFAULT 0
) STRICT;
-- Clustered by (storeKey, seqNum): a pull reads its store's events from adjacent pages.
-- `eventId` is the simple protocol's client event id, kept for idempotent retries.
CREATE TABLE IF NOT EXISTS events (
  storeKey INTEGER NOT NULL,
  seqNum INTEGER NOT NULL,
  parentSeqNum INTEGER NOT NULL,
  name TEXT NOT NULL,
  args TEXT,
  createdAt TEXT NOT NULL,
  clientId TEXT NOT NULL,
  sessionId TEXT NOT NULL,
  eventId TEXT,
  PRIMARY KEY (storeKey, seqNum)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events (storeKey, eventId) WHERE eventId IS NOT NULL;
CREATE INDEX IF NOT EXISTS stores_last_sync ON stores (lastSyncAt);
CREATE TABLE IF NOT EXISTS livestore_sync_health (id INTEGER PRIMARY KEY, checkedAt TEXT NOT NULL) STRICT;
