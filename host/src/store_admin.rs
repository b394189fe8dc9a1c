//! Operator actions on the data file: list and inspect stores, export and import logs, reset.
//! Used by the CLI (offline) and by the admin endpoints (through the store's owner).

use crate::storage::{insert_rows, Db, Row};
use crate::store_id::validate_store_id;
use anyhow::{bail, Context, Result};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The largest seqNum a LiveStore client holds exactly (`Number.MAX_SAFE_INTEGER`); the sync
/// component refuses pushes past it.
pub const MAX_SEQ_NUM: i64 = (1 << 53) - 1;

/// What `stores info` shows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StoreInfo {
    pub store_id: String,
    pub table: String,
    pub head: i64,
    pub backend_id: String,
    pub event_count: i64,
    pub last_sync_at: Option<String>,
    pub format_version: i64,
}

/// The first line of an export: which store, and the backend id its clients hold, so that an
/// import can restore the store without sending every client through a reset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExportHeader {
    /// The export format's version (1); also what tells a header line from an event.
    pub livestore_sync_export: u32,
    pub store_id: String,
    pub backend_id: String,
    pub head: i64,
    pub events: i64,
}

impl ExportHeader {
    pub fn of(info: &StoreInfo) -> ExportHeader {
        ExportHeader {
            livestore_sync_export: 1,
            store_id: info.store_id.clone(),
            backend_id: info.backend_id.clone(),
            head: info.head,
            events: info.event_count,
        }
    }

    /// The header, if `line` is one.
    pub fn parse(line: &str) -> Option<ExportHeader> {
        serde_json::from_str(line).ok()
    }
}

/// One exported event: a JSON line. `args` stays the exact JSON text that was pushed (no
/// re-encoding: numbers past f64 precision and any depth of nesting survive export → import
/// byte for byte).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedEvent {
    pub seq_num: i64,
    pub parent_seq_num: i64,
    pub name: String,
    #[serde(default)]
    pub args: Option<Box<RawValue>>,
    pub created_at: String,
    pub client_id: String,
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl ExportedEvent {
    pub fn from_row(r: Row) -> Result<ExportedEvent> {
        let args = match r.args {
            None => None,
            Some(text) => Some(RawValue::from_string(text).with_context(|| {
                format!("event {}: the stored args are not JSON (edited outside the server?)", r.seq_num)
            })?),
        };
        Ok(ExportedEvent {
            seq_num: r.seq_num,
            parent_seq_num: r.parent_seq_num,
            name: r.name,
            args,
            created_at: r.created_at,
            client_id: r.client_id,
            session_id: r.session_id,
            event_id: r.event_id,
        })
    }

    fn into_row(self) -> Row {
        Row {
            seq_num: self.seq_num,
            parent_seq_num: self.parent_seq_num,
            name: self.name,
            args: self.args.map(|a| String::from(Box::<str>::from(a))),
            created_at: self.created_at,
            client_id: self.client_id,
            session_id: self.session_id,
            event_id: self.event_id,
        }
    }
}

impl Db {
    /// Every store: those this server opened and those `@livestore/sync-cf` left in `context_7`.
    pub fn list_stores(&mut self) -> Result<Vec<StoreInfo>> {
        let ids: Vec<String> = {
            let mut stmt = self.conn.prepare(
                "SELECT storeId FROM context_7 UNION SELECT storeId FROM livestore_sync_stores ORDER BY storeId",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut out = Vec::new();
        for id in ids {
            if validate_store_id(&id).is_err() {
                continue;
            }
            if let Some(info) = self.store_info(&id)? {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// A store's head, backend id, event count and last sync; `None` if it does not exist.
    pub fn store_info(&mut self, store_id: &str) -> Result<Option<StoreInfo>> {
        validate_store_id(store_id)?;
        let context: Option<(i64, String)> = self
            .conn
            .query_row("SELECT currentHead, backendId FROM context_7 WHERE storeId = ?1", [store_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((head, backend_id)) = context else { return Ok(None) };
        // Claims the table of a store `@livestore/sync-cf` wrote, so the name shown is the one used.
        let quoted = self.table_for(store_id)?;
        let (table, last_sync_at, format_version): (String, Option<String>, i64) = self.conn.query_row(
            "SELECT tableName, lastSyncAt, formatVersion FROM livestore_sync_stores WHERE storeId = ?1",
            [store_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let event_count: i64 = self.conn.query_row(&format!("SELECT COUNT(*) FROM {quoted}"), [], |r| r.get(0))?;
        let last_sync_at = match last_sync_at {
            Some(t) => Some(t),
            None => self.conn.query_row(&format!("SELECT MAX(createdAt) FROM {quoted}"), [], |r| r.get(0))?,
        };
        Ok(Some(StoreInfo {
            store_id: store_id.to_string(),
            table,
            head,
            backend_id,
            event_count,
            last_sync_at,
            format_version,
        }))
    }

    /// Call `each` with every event of a store in seqNum order, a page at a time.
    pub fn export(&mut self, store_id: &str, mut each: impl FnMut(ExportedEvent) -> Result<()>) -> Result<u64> {
        if self.store_info(store_id)?.is_none() {
            bail!("store {store_id:?} does not exist");
        }
        let mut cursor = 0;
        let mut n = 0;
        loop {
            let rows = self.read_after(store_id, cursor, 1000)?;
            let Some(last) = rows.last() else { break };
            cursor = last.seq_num;
            for row in rows {
                each(ExportedEvent::from_row(row)?)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Replace a store's log with `events` and give it `backend_id`, in one transaction. The
    /// events must form a chain from ROOT (seqNum > 0, each `parentSeqNum` the previous
    /// `seqNum`). A store that has events is refused unless `replace`. The caller chooses the
    /// backend id (`ImportBackendId`): a replaced history never silently keeps the old one.
    pub fn import(
        &mut self,
        store_id: &str,
        events: Vec<ExportedEvent>,
        replace: bool,
        backend_id: &str,
    ) -> Result<u64> {
        let mut prev = 0;
        for (i, e) in events.iter().enumerate() {
            if e.seq_num > MAX_SEQ_NUM {
                bail!(
                    "line {}: seqNum {} is past {MAX_SEQ_NUM}, the largest a LiveStore client can hold",
                    i + 1,
                    e.seq_num
                );
            }
            if e.parent_seq_num != prev || e.seq_num <= prev {
                bail!(
                    "line {}: event seqNum {} with parentSeqNum {} does not continue the chain at {prev}",
                    i + 1,
                    e.seq_num,
                    e.parent_seq_num
                );
            }
            prev = e.seq_num;
        }
        let (head, _) = self.init_store(store_id, backend_id)?;
        let table = self.table_for(store_id)?;
        let existing: i64 = self.conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
        if (existing > 0 || head > 0) && !replace {
            bail!("store {store_id:?} already has {existing} events; pass --replace to overwrite it");
        }
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(&format!("DELETE FROM {table}"), [])?;
        tx.execute("DELETE FROM livestore_sync_event_ids WHERE storeId = ?1", [store_id])?;
        let n = events.len() as u64;
        let last_created = events.last().map(|e| e.created_at.clone());
        let rows: Vec<Row> = events.into_iter().map(ExportedEvent::into_row).collect();
        insert_rows(&tx, &table, store_id, &rows)?;
        tx.execute(
            "UPDATE context_7 SET currentHead = ?1, backendId = ?2 WHERE storeId = ?3",
            params![prev, backend_id, store_id],
        )?;
        tx.execute(
            "UPDATE livestore_sync_stores SET totalEvents = ?1, lastSyncAt = ?2 WHERE storeId = ?3",
            params![n as i64, last_created, store_id],
        )?;
        tx.commit().context("committing the import")?;
        Ok(n)
    }

    /// Clear a store's log and give it a new backend id: clients holding the old one get
    /// `BackendIdMismatchError` and re-sync. Returns the number of events removed.
    pub fn reset(&mut self, store_id: &str, new_backend_id: &str) -> Result<u64> {
        if self.store_info(store_id)?.is_none() {
            bail!("store {store_id:?} does not exist");
        }
        let table = self.table_for(store_id)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let removed = tx.execute(&format!("DELETE FROM {table}"), [])? as u64;
        tx.execute("DELETE FROM livestore_sync_event_ids WHERE storeId = ?1", [store_id])?;
        tx.execute(
            "UPDATE context_7 SET currentHead = 0, backendId = ?1 WHERE storeId = ?2",
            params![new_backend_id, store_id],
        )?;
        tx.execute("UPDATE livestore_sync_stores SET totalEvents = 0 WHERE storeId = ?1", [store_id])?;
        tx.commit().context("committing the reset")?;
        Ok(removed)
    }

    /// Table names (`db tables`).
    pub fn tables(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
