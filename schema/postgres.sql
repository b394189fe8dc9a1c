-- The Postgres layout (`--database-url`): the native SQLite layout's two tables
-- (schema/native-sqlite.sql) in Postgres' words, prefixed so they can share a database with an
-- application's own tables. host/src/storage/postgres.rs runs this at every connection, under
-- an advisory lock; every statement is idempotent. Store ids and event fields are bound as
-- parameters, never spliced in.
CREATE TABLE IF NOT EXISTS livestore_sync_stores (
  store_key bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  store_id text NOT NULL UNIQUE,
  head bigint NOT NULL,
  backend_id text NOT NULL,
  created_at text NOT NULL,
  last_sync_at text,
  event_count bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS livestore_sync_events (
  store_key bigint NOT NULL,
  seq_num bigint NOT NULL,
  parent_seq_num bigint NOT NULL,
  name text NOT NULL,
  args text,
  created_at text NOT NULL,
  client_id text NOT NULL,
  session_id text NOT NULL,
  event_id text,
  PRIMARY KEY (store_key, seq_num)
);
CREATE UNIQUE INDEX IF NOT EXISTS livestore_sync_events_event_id
  ON livestore_sync_events (store_key, event_id) WHERE event_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS livestore_sync_health (id integer PRIMARY KEY, checked_at timestamptz NOT NULL);
