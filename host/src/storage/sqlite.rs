//! The native server's SQLite storage (`schema/native-sqlite.sql`): a `stores` row per store
//! (head, backend id, counts) and every store's events in one `events` table keyed by
//! `(storeKey, seqNum)`. A data directory in the older table-per-store layout is migrated when
//! it is opened for serving (`layout_migration`).

use super::write_gate::{WriteGate, WriteTurn};
use super::{already_has_events, AppendError, Durability, Migrate, Row, Storage, StoreInfo};
use crate::layout_migration::{self, Layout};
use crate::store_id::validate_store_id;
use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub struct SqliteDb {
    pub(crate) conn: Connection,
    file: FileGuard,
    gate: Arc<WriteGate>,
    /// Between `begin_group` and `end_group`: appends share one transaction.
    grouping: bool,
    /// The open transaction of a group that has appended, and the writer's turn it holds.
    group_tx: Option<WriteTurn>,
    group_appends: usize,
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

impl SqliteDb {
    /// Open (or create) the data file for serving or writing: an older layout is migrated.
    /// The caller holds the data directory's lock.
    pub fn open(path: &Path, durability: Durability) -> Result<SqliteDb> {
        SqliteDb::open_with(path, durability, Migrate::Yes)
    }

    /// Open the data file; with `Migrate::No`, a file in the older layout is refused with
    /// [`layout_migration::NeedsMigration`].
    pub fn open_with(path: &Path, durability: Durability, migrate: Migrate) -> Result<SqliteDb> {
        let mut conn = Connection::open(path).with_context(|| format!("opening SQLite database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL").context("enabling WAL")?;
        let sync = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        match layout_migration::layout(&conn)? {
            Layout::Current => {}
            Layout::Empty => {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                // Another process may have created it meanwhile: the DDL is idempotent.
                tx.execute_batch(crate::schema::native_layout()).context("creating the tables")?;
                tx.pragma_update(None, "user_version", layout_migration::CURRENT_LAYOUT)?;
                tx.commit()?;
            }
            Layout::TablePerStore if migrate == Migrate::Yes => layout_migration::migrate(&mut conn, path)?,
            Layout::TablePerStore => return Err(layout_migration::NeedsMigration(path.to_path_buf()).into()),
        }
        Ok(SqliteDb {
            conn,
            file: FileGuard::new(path),
            gate: WriteGate::for_file(path),
            grouping: false,
            group_tx: None,
            group_appends: 0,
        })
    }

    /// Commit the open transaction; if that fails, roll it back, so nothing of it stays
    /// half-written for the next one.
    fn commit(&mut self, what: &'static str) -> Result<()> {
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(anyhow::Error::from(e).context(what));
        }
        Ok(())
    }

    /// The store's key in `events`; `None` if it does not exist.
    fn store_key(&self, store_id: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT storeKey FROM stores WHERE storeId = ?1", [store_id], |r| r.get(0))
            .optional()?)
    }
}

const INFO_COLUMNS: &str = "storeId, head, backendId, eventCount, createdAt, lastSyncAt";

fn info_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoreInfo> {
    Ok(StoreInfo {
        store_id: r.get(0)?,
        head: r.get(1)?,
        backend_id: r.get(2)?,
        event_count: r.get(3)?,
        created_at: r.get(4)?,
        last_sync_at: r.get(5)?,
    })
}

impl Storage for SqliteDb {
    /// A real write (health check): fails when the database is read-only or the disk full.
    fn probe_write(&mut self) -> Result<()> {
        self.file.check()?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO livestore_sync_health (id, checkedAt) VALUES (1, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                [],
            )
            .context("writing the health probe")?;
        Ok(())
    }

    /// Load a store's head and backend id, creating the store with `fresh_backend_id`.
    fn init_store(&mut self, store_id: &str, fresh_backend_id: &str) -> Result<(i64, String)> {
        if let Some(found) = self.store_context(store_id)? {
            return Ok(found);
        }
        self.file.check()?;
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO stores (storeId, head, backendId, createdAt) \
                 VALUES (?1, 0, ?2, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
            )?
            .execute(params![store_id, fresh_backend_id])
            .context("creating the store")?;
        self.store_context(store_id)?.with_context(|| format!("store {store_id:?} vanished while it was created"))
    }

    /// A store's head and backend id; `None` if it does not exist.
    fn store_context(&mut self, store_id: &str) -> Result<Option<(i64, String)>> {
        validate_store_id(store_id)?;
        Ok(self
            .conn
            .prepare_cached("SELECT head, backendId FROM stores WHERE storeId = ?1")?
            .query_row([store_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Append `rows` and move the head to the last row's seqNum, only if the stored head is
    /// still `expected_head`: in a transaction of its own, or in a group's (a savepoint, so a
    /// refused batch leaves nothing behind while the group goes on).
    fn append_batch(
        &mut self,
        store_id: &str,
        expected_head: i64,
        expected_backend: Option<&str>,
        rows: &[Row],
    ) -> Result<(), AppendError> {
        let Some(last) = rows.last() else {
            return Ok(());
        };
        if self.group_tx.is_none() {
            // A lone append, or a group's first: it opens the transaction and needs no savepoint
            // (a refused batch rolls the whole, still empty, transaction back). A savepoint makes
            // SQLite copy every page it touches to a sub-journal first, which a lone push would pay.
            self.file.check()?;
            let turn = self.gate.take_turn();
            self.conn.execute_batch("BEGIN IMMEDIATE").context("starting an append")?;
            if let Err(e) = append_in(&self.conn, store_id, expected_head, expected_backend, rows, last) {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(e);
            }
            if !self.grouping {
                // The turn is released after the commit, when this returns.
                return Ok(self.commit("committing the batch")?);
            }
            self.group_tx = Some(turn);
            self.group_appends += 1;
            return Ok(());
        }
        let savepoint = self.conn.savepoint().map_err(anyhow::Error::from)?;
        append_in(&savepoint, store_id, expected_head, expected_backend, rows, last)?;
        savepoint.commit().context("keeping the batch in its group")?;
        self.group_appends += 1;
        Ok(())
    }

    fn begin_group(&mut self) -> bool {
        self.grouping = true;
        true
    }

    fn end_group(&mut self) -> Result<usize> {
        self.grouping = false;
        let appends = std::mem::take(&mut self.group_appends);
        let Some(_turn) = self.group_tx.take() else { return Ok(0) };
        self.commit("committing a group of appends")?;
        Ok(appends)
    }

    /// The seqNums stored for these client event ids, in order (`None` when unknown).
    fn find_event_ids(&mut self, store_id: &str, ids: &[String]) -> Result<Vec<Option<i64>>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.seqNum FROM events e JOIN stores s ON e.storeKey = s.storeKey \
             WHERE s.storeId = ?1 AND e.eventId = ?2",
        )?;
        ids.iter().map(|id| Ok(stmt.query_row(params![store_id, id], |r| r.get(0)).optional()?)).collect()
    }

    /// The greatest seqNum created at or before `timestamp` (same text form as `createdAt`).
    fn seq_at_time(&mut self, store_id: &str, timestamp: &str) -> Result<i64> {
        let seq: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT MAX(e.seqNum) FROM events e JOIN stores s ON e.storeKey = s.storeKey \
                 WHERE s.storeId = ?1 AND e.createdAt <= ?2",
            )?
            .query_row([store_id, timestamp], |r| r.get(0))?;
        Ok(seq.unwrap_or(0))
    }

    fn count_after(&mut self, store_id: &str, cursor: i64) -> Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM events e JOIN stores s ON e.storeKey = s.storeKey \
                 WHERE s.storeId = ?1 AND e.seqNum > ?2",
            )?
            .query_row(params![store_id, cursor], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    fn read_after(&mut self, store_id: &str, cursor: i64, limit: u32) -> Result<Vec<Row>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.seqNum, e.parentSeqNum, e.name, e.args, e.createdAt, e.clientId, e.sessionId, e.eventId \
             FROM events e JOIN stores s ON e.storeKey = s.storeKey \
             WHERE s.storeId = ?1 AND e.seqNum > ?2 ORDER BY e.seqNum ASC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![store_id, cursor, limit], |r| {
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

    fn list_stores(&mut self) -> Result<Vec<StoreInfo>> {
        let mut stmt = self.conn.prepare(&format!("SELECT {INFO_COLUMNS} FROM stores ORDER BY storeId"))?;
        let rows = stmt.query_map([], info_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn store_info(&mut self, store_id: &str) -> Result<Option<StoreInfo>> {
        validate_store_id(store_id)?;
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {INFO_COLUMNS} FROM stores WHERE storeId = ?1"))?
            .query_row([store_id], info_row)
            .optional()?)
    }

    fn replace_log(
        &mut self,
        store_id: &str,
        backend_id: &str,
        replace: bool,
        rows: &mut dyn Iterator<Item = Result<Row>>,
        before_commit: &mut dyn FnMut(u64) -> Result<()>,
    ) -> Result<u64> {
        validate_store_id(store_id)?;
        self.file.check()?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO stores (storeId, head, backendId, createdAt) \
             VALUES (?1, 0, ?2, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
            params![store_id, backend_id],
        )?;
        let (key, head, count): (i64, i64, i64) =
            tx.query_row("SELECT storeKey, head, eventCount FROM stores WHERE storeId = ?1", [store_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        if (count > 0 || head > 0) && !replace {
            return Err(already_has_events(store_id, count));
        }
        tx.execute("DELETE FROM events WHERE storeKey = ?1", [key])?;
        let (mut n, mut last): (u64, Option<Row>) = (0, None);
        for row in rows {
            let row = row?;
            insert_rows(&tx, key, std::slice::from_ref(&row))?;
            n += 1;
            last = Some(row);
        }
        tx.execute(
            "UPDATE stores SET head = ?1, backendId = ?2, eventCount = ?3, lastSyncAt = ?4 WHERE storeKey = ?5",
            params![last.as_ref().map_or(0, |r| r.seq_num), backend_id, n as i64, last.map(|r| r.created_at), key],
        )?;
        before_commit(n)?;
        tx.commit().context("committing the import")?;
        Ok(n)
    }

    fn reset(&mut self, store_id: &str, new_backend_id: &str) -> Result<u64> {
        validate_store_id(store_id)?;
        self.file.check()?;
        let Some(key) = self.store_key(store_id)? else { anyhow::bail!("store {store_id:?} does not exist") };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let removed = tx.execute("DELETE FROM events WHERE storeKey = ?1", [key])? as u64;
        tx.execute(
            "UPDATE stores SET head = 0, backendId = ?1, eventCount = 0 WHERE storeKey = ?2",
            params![new_backend_id, key],
        )?;
        tx.commit().context("committing the reset")?;
        Ok(removed)
    }
}

/// One append inside the caller's transaction or savepoint: check the stored head and backend
/// id, insert the rows, move the head.
fn append_in(
    tx: &Connection,
    store_id: &str,
    expected_head: i64,
    expected_backend: Option<&str>,
    rows: &[Row],
    last: &Row,
) -> Result<(), AppendError> {
    let (key, head, backend): (i64, i64, String) = tx
        .prepare_cached("SELECT storeKey, head, backendId FROM stores WHERE storeId = ?1")
        .and_then(|mut s| s.query_row([store_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional())
        .context("reading the stored head")?
        .with_context(|| format!("store {store_id:?} does not exist (it was removed while open)"))?;
    if expected_backend.is_some_and(|b| b != backend) {
        return Err(AppendError::BackendChanged);
    }
    if head != expected_head {
        return Err(AppendError::HeadMoved(head));
    }
    insert_rows(tx, key, rows)?;
    tx.prepare_cached("UPDATE stores SET head = ?1, lastSyncAt = ?2, eventCount = eventCount + ?3 WHERE storeKey = ?4")
        .and_then(|mut s| s.execute(params![last.seq_num, last.created_at, rows.len() as i64, key]))
        .context("moving the head")?;
    Ok(())
}

/// Insert event rows (with their client event ids) for the store `key`, inside the caller's
/// transaction.
pub(crate) fn insert_rows(tx: &Connection, key: i64, rows: &[Row]) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (storeKey, seqNum, parentSeqNum, name, args, createdAt, clientId, sessionId, eventId) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for r in rows {
        insert
            .execute(params![
                key,
                r.seq_num,
                r.parent_seq_num,
                r.name,
                r.args,
                r.created_at,
                r.client_id,
                r.session_id,
                r.event_id
            ])
            .with_context(|| format!("inserting event {}", r.seq_num))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_row;

    fn row(seq: i64) -> Row {
        test_row(seq)
    }

    #[test]
    fn append_is_atomic_and_guarded_by_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = SqliteDb::open(&dir.path().join("t.db"), Durability::Normal).unwrap();
        let (head, backend) = db.init_store("s", "b1").unwrap();
        assert_eq!((head, backend.as_str()), (0, "b1"));
        db.append_batch("s", 0, None, &[row(1), row(2)]).unwrap();
        // a duplicate seqNum in the middle of a batch leaves nothing behind
        assert!(db.append_batch("s", 2, None, &[row(3), row(4), row(3)]).is_err());
        assert_eq!(db.count_after("s", 0).unwrap(), 2);
        // a stale expected head writes nothing
        assert!(matches!(db.append_batch("s", 0, None, &[row(3)]), Err(AppendError::HeadMoved(2))));
        // a writer that missed a reset writes nothing
        assert!(matches!(db.append_batch("s", 2, Some("b0"), &[row(3)]), Err(AppendError::BackendChanged)));
        let (head, backend) = db.init_store("s", "other").unwrap();
        assert_eq!((head, backend.as_str()), (2, "b1"));
        assert_eq!(db.read_after("s", 1, 10).unwrap(), vec![row(2)]);
    }

    #[test]
    fn a_group_commits_its_appends_together_and_nothing_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut db = SqliteDb::open(&path, Durability::Normal).unwrap();
        let mut other = SqliteDb::open(&path, Durability::Normal).unwrap();
        db.init_store("a", "ba").unwrap();
        db.init_store("b", "bb").unwrap();
        assert!(db.begin_group());
        db.append_batch("a", 0, None, &[row(1), row(2)]).unwrap();
        db.append_batch("b", 0, None, &[row(1)]).unwrap();
        db.append_batch("a", 2, None, &[row(3)]).unwrap();
        // The group's own reads see its appends (a pull after a push in the same group) …
        assert_eq!(db.read_after("a", 0, 10).unwrap(), vec![row(1), row(2), row(3)]);
        // … nobody else does until it commits.
        assert_eq!(other.count_after("a", 0).unwrap(), 0);
        assert_eq!(other.store_context("b").unwrap().map(|c| c.0), Some(0));
        assert_eq!(db.end_group().unwrap(), 3);
        assert_eq!(other.read_after("a", 0, 10).unwrap(), vec![row(1), row(2), row(3)]);
        assert_eq!(other.store_context("b").unwrap().map(|c| c.0), Some(1));
        // After the group, an append commits alone again.
        db.append_batch("b", 1, None, &[row(2)]).unwrap();
        assert_eq!(other.count_after("b", 0).unwrap(), 2);
        assert_eq!(db.end_group().unwrap(), 0, "no group is open");
    }

    #[test]
    fn a_refused_append_in_a_group_leaves_nothing_and_the_group_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = SqliteDb::open(&dir.path().join("t.db"), Durability::Normal).unwrap();
        db.init_store("a", "ba").unwrap();
        db.init_store("b", "bb").unwrap();
        db.begin_group();
        // Refused as the group's first append (no savepoint yet), then as later ones.
        assert!(matches!(db.append_batch("a", 3, None, &[row(4)]), Err(AppendError::HeadMoved(0))));
        assert!(db.append_batch("a", 0, None, &[row(1), row(1)]).is_err());
        db.append_batch("a", 0, None, &[row(1)]).unwrap();
        // A duplicate seqNum in the middle of a batch, a stale head, a missed reset.
        assert!(db.append_batch("b", 0, None, &[row(1), row(2), row(1)]).is_err());
        assert!(matches!(db.append_batch("b", 5, None, &[row(6)]), Err(AppendError::HeadMoved(0))));
        assert!(matches!(db.append_batch("b", 0, Some("old"), &[row(1)]), Err(AppendError::BackendChanged)));
        db.append_batch("a", 1, None, &[row(2)]).unwrap();
        assert_eq!(db.end_group().unwrap(), 2);
        assert_eq!(db.read_after("a", 0, 10).unwrap(), vec![row(1), row(2)]);
        assert_eq!(db.count_after("b", 0).unwrap(), 0);
        assert_eq!(db.store_context("b").unwrap(), Some((0, "bb".to_string())));
    }

    #[test]
    fn stores_are_kept_apart_whatever_their_ids_look_like() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = SqliteDb::open(&dir.path().join("t.db"), Durability::Normal).unwrap();
        // Ids `@livestore/sync-cf` maps to one table name, and SQL in an id.
        let ids = ["a-b", "a_b", "Abc", "abc", "caf\u{e9}", "cafe\u{301}", "x\"; DROP TABLE stores; --"];
        for (i, id) in ids.iter().enumerate() {
            db.init_store(id, &format!("b{i}")).unwrap();
            let rows: Vec<Row> = (1..=i as i64 + 1).map(row).collect();
            db.append_batch(id, 0, None, &rows).unwrap();
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(db.count_after(id, 0).unwrap(), i as u64 + 1, "{id:?}");
            assert_eq!(db.store_context(id).unwrap(), Some((i as i64 + 1, format!("b{i}"))));
        }
        assert!(db.init_store("", "b").is_err());
        assert_eq!(db.store_context("nobody").unwrap(), None);
    }

    #[test]
    fn client_event_ids_are_found_per_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = SqliteDb::open(&dir.path().join("t.db"), Durability::Normal).unwrap();
        for store in ["s", "t"] {
            db.init_store(store, "b").unwrap();
        }
        let with_id = |seq: i64, id: &str| Row { event_id: Some(id.into()), ..row(seq) };
        db.append_batch("s", 0, None, &[with_id(1, "e1"), row(2), with_id(3, "e3")]).unwrap();
        let ids = ["e3".to_string(), "e2".into(), "e1".into()];
        assert_eq!(db.find_event_ids("s", &ids).unwrap(), vec![Some(3), None, Some(1)]);
        assert_eq!(db.find_event_ids("t", &ids).unwrap(), vec![None, None, None]);
        // One id once per store, but the same id in another store is another event.
        assert!(db.append_batch("s", 3, None, &[with_id(4, "e1")]).is_err());
        db.append_batch("t", 0, None, &[with_id(1, "e1")]).unwrap();
        assert_eq!(db.read_after("s", 0, 10).unwrap()[2].event_id.as_deref(), Some("e3"));
    }
}
