//! Event-log table names: `@livestore/sync-cf`'s name for a store when nothing can share it,
//! otherwise an encoded name no other id produces, so every store id maps to its own table.

use anyhow::{bail, Result};
use rusqlite::{Connection, OptionalExtension};

/// `@livestore/sync-cf`'s persistence format, part of every event-log table name.
pub const FORMAT_VERSION: i64 = 7;

/// The table name `@livestore/sync-cf` gives a store: every UTF-16 code unit that is not an
/// ASCII letter or digit becomes `_` (JavaScript's `replaceAll(/[^a-zA-Z0-9]/g, '_')`), so
/// `a-b`, `a_b` and `a b` share it, and SQLite, which compares identifiers without regard to
/// ASCII case, also treats `Abc` and `abc` as one table.
pub fn reference_table_name(store_id: &str) -> String {
    let mapped: String = store_id
        .encode_utf16()
        .map(|unit| match u8::try_from(unit) {
            Ok(b) if b.is_ascii_alphanumeric() => char::from(b),
            _ => '_',
        })
        .collect();
    format!("eventlog_{FORMAT_VERSION}_{mapped}")
}

/// A name no other store id produces and no reference name can equal (`-` is outside the
/// alphabet of `@livestore/sync-cf`'s names): the id's UTF-8 bytes in lowercase hex.
pub fn encoded_table_name(store_id: &str) -> String {
    let hex: String = store_id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("eventlog_{FORMAT_VERSION}_x-{hex}")
}

/// Claim the event-log table of a store that has none, with the shared rule
/// (`schema/sqlite.sql`, `claim_table`): `@livestore/sync-cf`'s name when nothing can share
/// it, otherwise the encoded name, which is one-to-one.
pub(crate) fn claim_table_name(tx: &rusqlite::Transaction<'_>, store_id: &str) -> Result<String> {
    let written_by_reference =
        tx.query_row("SELECT 1 FROM context_7 WHERE storeId = ?1", [store_id], |_| Ok(())).optional()?.is_some();
    let candidates = [(reference_table_name(store_id), written_by_reference), (encoded_table_name(store_id), false)];
    for (candidate, own) in candidates {
        if tx.execute(crate::schema::claim_table(), rusqlite::params![store_id, candidate, own])? == 1 {
            return Ok(candidate);
        }
    }
    bail!("no free event-log table name for store {store_id:?}: {} is taken", encoded_table_name(store_id))
}

pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Before ids differing only in ASCII case got tables of their own, such ids could claim two
/// spellings of one table; their events are mixed and cannot be told apart. Say so at start.
pub(crate) fn warn_about_shared_tables(conn: &Connection) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT a.storeId, b.storeId, a.tableName FROM livestore_sync_stores a \
         JOIN livestore_sync_stores b ON b.tableName = a.tableName COLLATE NOCASE AND b.storeId > a.storeId",
    )?;
    let pairs = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
    for pair in pairs {
        let (a, b, table) = pair?;
        tracing::warn!(store_a = a, store_b = b, table, "two stores share one event-log table (written before store ids differing only in case were kept apart); their events are mixed");
    }
    Ok(())
}
