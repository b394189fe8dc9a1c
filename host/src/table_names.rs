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

/// The event-log table a store without one gets. The `@livestore/sync-cf` name is kept when nothing can
/// share it: no other store has claimed it and no table by that name exists, compared as SQLite
/// compares identifiers (ASCII case-insensitively), unless the store itself was written by
/// `@livestore/sync-cf` (it has a head but no claim yet: that table is its own). Otherwise the
/// encoded name, which is one-to-one.
pub(crate) fn unclaimed_table_name(tx: &rusqlite::Transaction<'_>, store_id: &str) -> Result<String> {
    let found =
        |sql: &str, param: &str| -> Result<bool> { Ok(tx.query_row(sql, [param], |_| Ok(())).optional()?.is_some()) };
    let claimed =
        |name: &str| found("SELECT 1 FROM livestore_sync_stores WHERE tableName = ?1 COLLATE NOCASE LIMIT 1", name);
    let exists = |name: &str| found("SELECT 1 FROM sqlite_master WHERE name = ?1 COLLATE NOCASE LIMIT 1", name);
    let reference = reference_table_name(store_id);
    if !claimed(&reference)? {
        let written_by_reference = found("SELECT 1 FROM context_7 WHERE storeId = ?1", store_id)?;
        if written_by_reference || !exists(&reference)? {
            return Ok(reference);
        }
    }
    let encoded = encoded_table_name(store_id);
    if claimed(&encoded)? || exists(&encoded)? {
        bail!("no free event-log table name for store {store_id:?}: {encoded} is taken");
    }
    Ok(encoded)
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
