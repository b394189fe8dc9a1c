//! From the table-per-store layout (`@livestore/sync-cf`'s format 7: `context_7` and one
//! `eventlog_7_<name>` per store, plus livestore-sync's `livestore_sync_stores` claims and
//! `livestore_sync_event_ids`) to the native layout (`schema/native-sqlite.sql`). Data
//! directories written by livestore-sync 0.1, and SQLite files `@livestore/sync-cf` wrote, are
//! in the older layout. The migration is one transaction: a crash or an error leaves the file
//! as it was, and a started server never sees a half-migrated file.

use crate::table_names::{quote_ident, reference_table_name};
use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `PRAGMA user_version` of a file in the native layout.
pub const CURRENT_LAYOUT: i64 = 2;

/// What a data file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// No sync tables yet.
    Empty,
    /// Format 7's table per store.
    TablePerStore,
    Current,
}

/// A reading command met a file in the older layout and may not migrate it.
#[derive(Debug)]
pub struct NeedsMigration(pub PathBuf);

impl std::fmt::Display for NeedsMigration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is in the older table-per-store layout; `livestore-sync serve` (or a writing command such as \
             `import`) migrates it once, in one transaction",
            self.0.display()
        )
    }
}

impl std::error::Error for NeedsMigration {}

fn table_exists(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE", [name], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn layout(conn: &Connection) -> Result<Layout> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == CURRENT_LAYOUT {
        return Ok(Layout::Current);
    }
    if version > CURRENT_LAYOUT {
        bail!(
            "the data file is in layout {version}, written by a newer livestore-sync; this one reads layout \
             {CURRENT_LAYOUT} (and migrates older ones)"
        );
    }
    let old = table_exists(conn, "context_7")?
        || table_exists(conn, "livestore_sync_stores")?
        || conn
            .query_row(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name LIKE 'eventlog\\_7\\_%' ESCAPE '\\'",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
    Ok(if old { Layout::TablePerStore } else { Layout::Empty })
}

/// One store of the older layout.
struct OldStore {
    id: String,
    /// The event-log table holding its events, if it has one.
    table: Option<String>,
    head: i64,
    backend_id: Option<String>,
    created_at: Option<String>,
    last_sync_at: Option<String>,
}

/// Every store the older layout knows: those livestore-sync claimed a table for, and those
/// `@livestore/sync-cf` left in `context_7` (whose table, if any, has the reference name).
fn old_stores(conn: &Connection) -> Result<Vec<OldStore>> {
    let has_context = table_exists(conn, "context_7")?;
    let has_claims = table_exists(conn, "livestore_sync_stores")?;
    let ids_sql = match (has_context, has_claims) {
        (true, true) => "SELECT storeId FROM context_7 UNION SELECT storeId FROM livestore_sync_stores ORDER BY 1",
        (true, false) => "SELECT storeId FROM context_7 ORDER BY 1",
        (false, true) => "SELECT storeId FROM livestore_sync_stores ORDER BY 1",
        (false, false) => return Ok(Vec::new()),
    };
    let ids: Vec<String> = conn.prepare(ids_sql)?.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    let mut stores = Vec::with_capacity(ids.len());
    for id in ids {
        let claim: Option<(String, Option<String>, Option<String>)> = if has_claims {
            conn.query_row(
                "SELECT tableName, createdAt, lastSyncAt FROM livestore_sync_stores WHERE storeId = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
        } else {
            None
        };
        let context: Option<(i64, String)> = if has_context {
            conn.query_row("SELECT currentHead, backendId FROM context_7 WHERE storeId = ?1", [&id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?
        } else {
            None
        };
        let table = match &claim {
            Some((table, ..)) => Some(table.clone()),
            // Written by `@livestore/sync-cf`: its table has the reference name, unless another
            // store claimed that name (then this store never had events of its own).
            None => {
                let name = reference_table_name(&id);
                let claimed_by_other = has_claims
                    && conn
                        .query_row(
                            "SELECT 1 FROM livestore_sync_stores WHERE tableName = ?1 COLLATE NOCASE",
                            [&name],
                            |_| Ok(()),
                        )
                        .optional()?
                        .is_some();
                (!claimed_by_other).then_some(name)
            }
        };
        let table = match table {
            Some(t) if table_exists(conn, &t)? => Some(t),
            _ => None,
        };
        let (created_at, last_sync_at) = claim.map(|(_, c, l)| (c, l)).unwrap_or_default();
        stores.push(OldStore {
            id,
            table,
            head: context.as_ref().map_or(0, |c| c.0),
            backend_id: context.map(|c| c.1),
            created_at,
            last_sync_at,
        });
    }
    Ok(stores)
}

/// Migrate the file at `path` (open as `conn`) to the native layout, in one transaction.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let started = Instant::now();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated it while this one waited for the write lock.
    if layout(&tx)? != Layout::TablePerStore {
        return Ok(());
    }
    let stores = old_stores(&tx).context("reading the older layout's stores")?;
    tracing::info!(
        file = %path.display(),
        stores = stores.len(),
        "migrating the data file to one events table (once; nothing is changed unless it all succeeds)"
    );
    tx.execute_batch(crate::schema::native_layout()).context("creating the new tables")?;
    let has_ids = table_exists(&tx, "livestore_sync_event_ids")?;
    let mut used_tables = BTreeSet::new();
    let mut total_events = 0u64;
    for (n, store) in stores.iter().enumerate() {
        let backend_id = store.backend_id.clone().unwrap_or_else(|| nanoid::nanoid!());
        tx.execute(
            "INSERT INTO stores (storeId, head, backendId, createdAt, lastSyncAt) \
             VALUES (?1, ?2, ?3, COALESCE(?4, strftime('%Y-%m-%dT%H:%M:%fZ','now')), ?5)",
            params![store.id, store.head, backend_id, store.created_at, store.last_sync_at],
        )
        .with_context(|| format!("store {:?}", store.id))?;
        let key = tx.last_insert_rowid();
        let Some(table) = &store.table else { continue };
        let quoted = quote_ident(table);
        let event_id = if has_ids {
            "(SELECT i.eventId FROM livestore_sync_event_ids i WHERE i.storeId = ?2 AND i.seqNum = e.seqNum)"
        } else {
            "NULL"
        };
        let copied = tx
            .execute(
                &format!(
                    "INSERT INTO events (storeKey, seqNum, parentSeqNum, name, args, createdAt, clientId, sessionId, eventId) \
                     SELECT ?1, e.seqNum, e.parentSeqNum, e.name, e.args, e.createdAt, e.clientId, e.sessionId, {event_id} \
                     FROM {quoted} e"
                ),
                params![key, store.id],
            )
            .with_context(|| format!("copying the events of store {:?} from {table}", store.id))?;
        // A log `@livestore/sync-cf` wrote can hold rows past its head (its non-atomic
        // inserts); those rows were visible to pulls, so the head covers them.
        tx.execute(
            "UPDATE stores SET eventCount = ?2, \
               head = MAX(head, COALESCE((SELECT MAX(seqNum) FROM events WHERE storeKey = ?1), 0)), \
               lastSyncAt = COALESCE(lastSyncAt, (SELECT MAX(createdAt) FROM events WHERE storeKey = ?1)) \
             WHERE storeKey = ?1",
            params![key, copied as i64],
        )?;
        total_events += copied as u64;
        if !used_tables.insert(table.to_ascii_lowercase()) {
            // Ids that map to one table name (`a-b` and `a_b`, `Abc` and `abc`) could share a
            // table before they were kept apart; both stores keep the mixed events they served.
            tracing::warn!(store_id = store.id, table, "this store shared its event-log table with another store");
        }
        if (n + 1) % 1000 == 0 {
            tracing::info!(done = n + 1, of = stores.len(), events = total_events, "migrating stores");
        }
    }
    let mut left = Vec::new();
    let tables: Vec<String> = tx
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'eventlog\\_7\\_%' ESCAPE '\\'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for table in tables {
        if used_tables.contains(&table.to_ascii_lowercase()) {
            tx.execute(&format!("DROP TABLE {}", quote_ident(&table)), [])?;
        } else {
            left.push(table);
        }
    }
    for table in ["context_7", "livestore_sync_stores", "livestore_sync_event_ids"] {
        tx.execute(&format!("DROP TABLE IF EXISTS {table}"), [])?;
    }
    if !left.is_empty() {
        tracing::warn!(?left, "event-log tables no store refers to were left in place, untouched");
    }
    tx.pragma_update(None, "user_version", CURRENT_LAYOUT)?;
    tx.commit().context("committing the migration")?;
    tracing::info!(
        stores = stores.len(),
        events = total_events,
        seconds = started.elapsed().as_secs_f64(),
        "data file migrated to one events table"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;

    /// A file in the older layout, as livestore-sync 0.1 and `@livestore/sync-cf` wrote them.
    fn old_file(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(schema::metadata()).unwrap();
        conn
    }

    #[test]
    fn a_failing_migration_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.db");
        let conn = old_file(&path);
        conn.execute_batch(&schema::event_log_table("\"eventlog_7_s\"")).unwrap();
        // A row the new table refuses (parentSeqNum is required there too, but here a text
        // seqNum in a non-strict table written by hand).
        conn.execute_batch(
            "INSERT INTO context_7 VALUES ('s', 1, 'b');
             INSERT INTO livestore_sync_stores (storeId, tableName, formatVersion, createdAt) VALUES ('s', 'eventlog_7_s', 7, 'x');
             INSERT INTO eventlog_7_s VALUES (1, 0, 'e', NULL, 't', 'c', 's');
             CREATE TABLE eventlog_7_broken (seqNum, parentSeqNum, name, args, createdAt, clientId, sessionId);
             INSERT INTO eventlog_7_broken VALUES ('one', 0, 'e', NULL, 't', 'c', 's');
             INSERT INTO livestore_sync_stores (storeId, tableName, formatVersion, createdAt) VALUES ('broken', 'eventlog_7_broken', 7, 'x');",
        )
        .unwrap();
        drop(conn);
        let mut conn = Connection::open(&path).unwrap();
        let err = migrate(&mut conn, &path).expect_err("a text seqNum cannot be copied");
        assert!(format!("{err:#}").contains("\"broken\""), "{err:#}");
        assert_eq!(layout(&conn).unwrap(), Layout::TablePerStore);
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM eventlog_7_s", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
        assert!(!table_exists(&conn, "events").unwrap());
    }

    #[test]
    fn a_newer_layout_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", CURRENT_LAYOUT + 1).unwrap();
        let err = layout(&conn).expect_err("newer");
        assert!(err.to_string().contains("newer livestore-sync"), "{err}");
    }
}
