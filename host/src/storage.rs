//! SQLite storage in `@livestore/sync-cf`'s format 7: `eventlog_7_<name>` per store and `context_7`
//! for heads and backend ids, plus `livestore_sync_stores` for the injective
//! store-id → table mapping and its sync metadata.

use crate::store_id::validate_store_id;
use crate::table_names::{claim_table_name, quote_ident, warn_about_shared_tables};
use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::table_names::FORMAT_VERSION;

/// One event-log row, as stored: the WIT `event-row` the component reads and writes
/// (`eventId` is the client's own event id of the simple protocol, kept in
/// `livestore_sync_event_ids`).
pub use crate::bindings::EventRow as Row;

/// Why an append wrote nothing.
#[derive(Debug)]
pub enum AppendError {
    /// The stored head is not the expected one (another writer moved it); it is now this.
    HeadMoved(i64),
    Storage(anyhow::Error),
}

impl From<anyhow::Error> for AppendError {
    fn from(e: anyhow::Error) -> Self {
        AppendError::Storage(e)
    }
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::HeadMoved(head) => write!(f, "the stored head moved to {head}; batch not written"),
            AppendError::Storage(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for AppendError {}

/// Durability of a commit. `Normal` (WAL + synchronous=NORMAL) survives a process crash
/// (`kill -9`); `Full` also survives power loss, at the cost of an fsync per push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Durability {
    #[default]
    Normal,
    Full,
}

pub struct Db {
    pub(crate) conn: Connection,
    /// store id → quoted event-log table name.
    tables: HashMap<String, String>,
    file: FileGuard,
}

/// The database file this connection opened. If the file at the path is deleted or replaced
/// while serving, SQLite keeps writing to the old inode, which nobody will read again: every
/// acknowledged event would be lost at restart. Writes check the path first (one `stat`) and
/// refuse for good once it changed.
struct FileGuard {
    path: PathBuf,
    identity: Option<(u64, u64)>,
    lost: Option<String>,
}

fn file_identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

impl FileGuard {
    fn new(path: &Path) -> FileGuard {
        FileGuard { path: path.to_path_buf(), identity: file_identity(path).ok(), lost: None }
    }

    fn check(&mut self) -> Result<()> {
        if let Some(lost) = &self.lost {
            anyhow::bail!("{lost}");
        }
        let Some(opened) = self.identity else { return Ok(()) };
        let problem = match file_identity(&self.path) {
            Ok(now) if now == opened => return Ok(()),
            Ok(_) => "was replaced by another file",
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "was deleted",
            Err(e) => return Err(anyhow::Error::from(e).context(format!("checking {}", self.path.display()))),
        };
        let lost = format!(
            "the database file {} {problem} while the server was running; refusing writes (they would be lost) \
             until the server is restarted",
            self.path.display()
        );
        tracing::error!("{lost}");
        self.lost = Some(lost.clone());
        anyhow::bail!("{lost}")
    }
}

impl Db {
    pub fn open(path: &Path, durability: Durability) -> Result<Db> {
        let conn = Connection::open(path).with_context(|| format!("opening SQLite database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL").context("enabling WAL")?;
        let sync = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.execute_batch(crate::schema::metadata())
            .and_then(|()| {
                conn.execute_batch(
                    "CREATE TABLE IF NOT EXISTS livestore_sync_health (id INTEGER PRIMARY KEY, checkedAt TEXT NOT NULL) STRICT",
                )
            })
        .context("creating metadata tables")?;
        Ok(Db { conn, tables: HashMap::new(), file: FileGuard::new(path) })
    }

    /// Log every pair of stores that share one event-log table (see `table_names.rs`); the
    /// server does this once at start.
    pub fn warn_about_shared_tables(&self) -> Result<()> {
        warn_about_shared_tables(&self.conn)
    }

    /// A real write (health check): fails when the database is read-only or the disk full.
    pub fn probe_write(&mut self) -> Result<()> {
        self.file.check()?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO livestore_sync_health (id, checkedAt) VALUES (1, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                [],
            )
            .context("writing the health probe")?;
        Ok(())
    }

    /// The quoted event-log table of a store, claiming and creating it on first use.
    pub(crate) fn table_for(&mut self, store_id: &str) -> Result<String> {
        if let Some(t) = self.tables.get(store_id) {
            return Ok(t.clone());
        }
        validate_store_id(store_id)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<String> = tx
            .query_row("SELECT tableName FROM livestore_sync_stores WHERE storeId = ?1", [store_id], |r| r.get(0))
            .optional()?;
        let name = match existing {
            Some(name) => name,
            None => claim_table_name(&tx, store_id)?,
        };
        let quoted = quote_ident(&name);
        tx.execute_batch(&crate::schema::event_log_table(&quoted))?;
        tx.commit()?;
        self.tables.insert(store_id.to_string(), quoted.clone());
        Ok(quoted)
    }

    /// Drop the cached table name of a store that no longer exists.
    pub(crate) fn forget_table(&mut self, store_id: &str) {
        self.tables.remove(store_id);
    }

    /// Load a store's head and backend id, persisting `fresh_backend_id` for a new store.
    pub fn init_store(&mut self, store_id: &str, fresh_backend_id: &str) -> Result<(i64, String)> {
        self.file.check()?;
        let table = self.table_for(store_id)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO context_7 (storeId, currentHead, backendId) VALUES (?1, 0, ?2)",
            params![store_id, fresh_backend_id],
        )?;
        let (mut head, backend_id): (i64, String) =
            tx.query_row("SELECT currentHead, backendId FROM context_7 WHERE storeId = ?1", [store_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        // A log written by `@livestore/sync-cf` can hold rows past its head (its non-atomic
        // inserts); those rows are visible to pulls, so the head must cover them.
        let max: Option<i64> = tx.query_row(&format!("SELECT MAX(seqNum) FROM {table}"), [], |r| r.get(0))?;
        if let Some(max) = max.filter(|m| *m > head) {
            tracing::warn!(store_id, head, max, "event log extends past the stored head; advancing the head");
            tx.execute("UPDATE context_7 SET currentHead = ?1 WHERE storeId = ?2", params![max, store_id])?;
            head = max;
        }
        tx.commit()?;
        Ok((head, backend_id))
    }

    /// Append `rows` and move the head to the last row's seqNum in one transaction,
    /// only if the stored head is still `expected_head`.
    pub fn append_batch(&mut self, store_id: &str, expected_head: i64, rows: &[Row]) -> Result<(), AppendError> {
        let Some(last) = rows.last() else {
            return Ok(());
        };
        self.file.check()?;
        let table = self.table_for(store_id)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(anyhow::Error::from)?;
        let head: i64 = tx
            .prepare_cached("SELECT currentHead FROM context_7 WHERE storeId = ?1")
            .and_then(|mut s| s.query_row([store_id], |r| r.get(0)))
            .context("reading the stored head")?;
        if head != expected_head {
            return Err(AppendError::HeadMoved(head));
        }
        write_batch(tx, &table, store_id, rows, last).map_err(AppendError::Storage)
    }

    /// The seqNums stored for these client event ids, in order (`None` when unknown).
    pub fn find_event_ids(&mut self, store_id: &str, ids: &[String]) -> Result<Vec<Option<i64>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seqNum FROM livestore_sync_event_ids WHERE storeId = ?1 AND eventId = ?2")?;
        ids.iter().map(|id| Ok(stmt.query_row(params![store_id, id], |r| r.get(0)).optional()?)).collect()
    }

    /// The greatest seqNum created at or before `timestamp` (same text form as `createdAt`).
    pub fn seq_at_time(&mut self, store_id: &str, timestamp: &str) -> Result<i64> {
        let table = self.table_for(store_id)?;
        let seq: Option<i64> = self
            .conn
            .prepare_cached(&format!("SELECT MAX(seqNum) FROM {table} WHERE createdAt <= ?1"))?
            .query_row([timestamp], |r| r.get(0))?;
        Ok(seq.unwrap_or(0))
    }

    pub fn count_after(&mut self, store_id: &str, cursor: i64) -> Result<u64> {
        let table = self.table_for(store_id)?;
        let n: i64 = self
            .conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM {table} WHERE seqNum > ?1"))?
            .query_row([cursor], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    pub fn read_after(&mut self, store_id: &str, cursor: i64, limit: u32) -> Result<Vec<Row>> {
        let table = self.table_for(store_id)?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT e.seqNum, e.parentSeqNum, e.name, e.args, e.createdAt, e.clientId, e.sessionId, i.eventId FROM {table} e \
             LEFT JOIN livestore_sync_event_ids i ON i.storeId = ?3 AND i.seqNum = e.seqNum \
             WHERE e.seqNum > ?1 ORDER BY e.seqNum ASC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![cursor, limit, store_id], |r| {
            Ok(Row {
                seq_num: r.get(0)?,
                parent_seq_num: r.get(1)?,
                name: r.get(2)?,
                args: r.get(3)?,
                created_at: r.get(4)?,
                client_id: r.get(5)?,
                session_id: r.get(6)?,
                event_id: r.get(7)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>().context("reading events")
    }
}

/// The rows and the new head of an admitted batch, in the caller's transaction, committed.
fn write_batch(tx: rusqlite::Transaction<'_>, table: &str, store_id: &str, rows: &[Row], last: &Row) -> Result<()> {
    insert_rows(&tx, table, store_id, rows)?;
    tx.prepare_cached("UPDATE context_7 SET currentHead = ?1 WHERE storeId = ?2")?
        .execute(params![last.seq_num, store_id])?;
    tx.prepare_cached(
        "UPDATE livestore_sync_stores SET lastSyncAt = ?1, totalEvents = totalEvents + ?2 WHERE storeId = ?3",
    )?
    .execute(params![last.created_at, rows.len() as i64, store_id])?;
    tx.commit().context("committing the batch")?;
    Ok(())
}

/// Insert event rows (and their client event ids) inside the caller's transaction.
pub(crate) fn insert_rows(tx: &rusqlite::Transaction<'_>, table: &str, store_id: &str, rows: &[Row]) -> Result<()> {
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO {table} (seqNum, parentSeqNum, name, args, createdAt, clientId, sessionId) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))?;
    for r in rows {
        insert
            .execute(params![r.seq_num, r.parent_seq_num, r.name, r.args, r.created_at, r.client_id, r.session_id])
            .with_context(|| format!("inserting event {}", r.seq_num))?;
    }
    if rows.iter().any(|r| r.event_id.is_some()) {
        let mut insert_id =
            tx.prepare_cached("INSERT INTO livestore_sync_event_ids (storeId, eventId, seqNum) VALUES (?1, ?2, ?3)")?;
        for r in rows {
            if let Some(id) = &r.event_id {
                insert_id
                    .execute(params![store_id, id, r.seq_num])
                    .with_context(|| format!("recording event id {id:?}"))?;
            }
        }
    }
    Ok(())
}

/// A row for unit tests: seqNum `seq` after `seq - 1`, args `{"id":"t"}`.
#[cfg(test)]
pub(crate) fn test_row(seq: i64) -> Row {
    Row {
        seq_num: seq,
        parent_seq_num: seq - 1,
        name: "e".into(),
        args: Some(r#"{"id":"t"}"#.into()),
        created_at: "2026-01-01T00:00:00.000Z".into(),
        client_id: "c".into(),
        session_id: "s".into(),
        event_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64) -> Row {
        test_row(seq)
    }

    #[test]
    fn table_names_are_one_to_one_and_prefer_the_reference_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("t.db"), Durability::Normal).unwrap();
        let mut table = |id: &str| db.table_for(id).unwrap();
        assert_eq!(table("a-b"), "\"eventlog_7_a_b\"");
        assert_eq!(table("a_b"), "\"eventlog_7_x-615f62\"");
        assert_eq!(table("a b"), "\"eventlog_7_x-612062\"");
        assert_eq!(table("Abc"), "\"eventlog_7_Abc\"");
        // SQLite would open `eventlog_7_Abc` for `eventlog_7_abc`.
        assert_eq!(table("abc"), "\"eventlog_7_x-616263\"");
        // Ids that look like encoded names get reference names, which cannot equal one.
        assert_eq!(table("x-616263"), "\"eventlog_7_x_616263\"");
        assert_eq!(table("X_616263"), "\"eventlog_7_x-585f363136323633\"");
        // NFC and NFD forms of one word are different ids.
        assert_eq!(table("caf\u{e9}"), "\"eventlog_7_caf_\"");
        assert_eq!(table("cafe\u{301}"), "\"eventlog_7_cafe_\"");
        assert_eq!(table("CAF\u{c9}"), "\"eventlog_7_x-434146c389\"");
        // An astral character is two UTF-16 units, as in `@livestore/sync-cf`'s JavaScript.
        assert_eq!(table("\u{1f600}"), "\"eventlog_7___\"");
        assert_eq!(table("a\"; DROP TABLE context_7; --"), "\"eventlog_7_a___DROP_TABLE_context_7____\"");
        assert!(db.table_for("").is_err());
        // Every claim is its own table.
        let names: Vec<String> = db.tables().unwrap().into_iter().filter(|t| t.starts_with("eventlog_")).collect();
        assert_eq!(names.len(), 12, "{names:?}");
    }

    #[test]
    fn a_table_the_reference_left_is_only_taken_by_its_own_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let db = Db::open(&path, Durability::Normal).unwrap();
            // What @livestore/sync-cf writes: a head for `team-1` and its table, no claim.
            db.conn
                .execute_batch(
                    "INSERT INTO context_7 VALUES ('team-1', 1, 'ref-backend');
                     CREATE TABLE eventlog_7_team_1 (seqNum integer primary key, parentSeqNum integer not null, name text not null, args text, createdAt text not null, clientId text not null, sessionId text not null) strict;
                     INSERT INTO eventlog_7_team_1 VALUES (1, 0, 'e', '{}', '2026-01-01T00:00:00.000Z', 'c', 's');",
                )
                .unwrap();
        }
        let mut db = Db::open(&path, Durability::Normal).unwrap();
        // `team_1` and `TEAM 1` map to the same reference name but are not its owner.
        assert_eq!(db.init_store("team_1", "b").unwrap(), (0, "b".to_string()));
        assert_eq!(db.table_for("TEAM 1").unwrap(), "\"eventlog_7_x-5445414d2031\"");
        assert_eq!(db.init_store("team-1", "unused").unwrap(), (1, "ref-backend".to_string()));
        assert_eq!(db.count_after("team-1", 0).unwrap(), 1);
        assert_eq!(db.count_after("team_1", 0).unwrap(), 0);
    }

    #[test]
    fn claims_written_by_earlier_versions_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let mut db = Db::open(&path, Durability::Normal).unwrap();
            db.init_store("a-b", "b1").unwrap();
            db.append_batch("a-b", 0, &[row(1)]).unwrap();
            // The hex name earlier versions gave `a_b`, claimed and in use.
            db.conn
                .execute_batch(
                    "INSERT INTO livestore_sync_stores (storeId, tableName, formatVersion, createdAt) VALUES ('a_b', 'eventlog_7_x_615f62', 7, '2026-01-01');
                     CREATE TABLE eventlog_7_x_615f62 (seqNum integer primary key, parentSeqNum integer not null, name text not null, args text, createdAt text not null, clientId text not null, sessionId text not null) strict;
                     INSERT INTO context_7 VALUES ('a_b', 2, 'b2');
                     INSERT INTO eventlog_7_x_615f62 VALUES (1, 0, 'e', '{}', '2026-01-01T00:00:00.000Z', 'c', 's'), (2, 1, 'e', '{}', '2026-01-01T00:00:00.000Z', 'c', 's');",
                )
                .unwrap();
        }
        let mut db = Db::open(&path, Durability::Normal).unwrap();
        assert_eq!(db.table_for("a_b").unwrap(), "\"eventlog_7_x_615f62\"");
        assert_eq!(db.init_store("a_b", "unused").unwrap(), (2, "b2".to_string()));
        assert_eq!(db.init_store("a-b", "unused").unwrap(), (1, "b1".to_string()));
        // An id whose reference name is that old hex name case-insensitively gets its own table.
        assert_eq!(db.table_for("X_615F62").unwrap(), "\"eventlog_7_x-585f363135463632\"");
    }

    #[test]
    fn append_is_atomic_and_guarded_by_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("t.db"), Durability::Normal).unwrap();
        let (head, backend) = db.init_store("s", "b1").unwrap();
        assert_eq!((head, backend.as_str()), (0, "b1"));
        db.append_batch("s", 0, &[row(1), row(2)]).unwrap();
        // a duplicate seqNum in the middle of a batch leaves nothing behind
        assert!(db.append_batch("s", 2, &[row(3), row(4), row(3)]).is_err());
        assert_eq!(db.count_after("s", 0).unwrap(), 2);
        // a stale expected head writes nothing
        assert!(db.append_batch("s", 0, &[row(3)]).is_err());
        let (head, backend) = db.init_store("s", "other").unwrap();
        assert_eq!((head, backend.as_str()), (2, "b1"));
        assert_eq!(db.read_after("s", 1, 10).unwrap(), vec![row(2)]);
    }
}
