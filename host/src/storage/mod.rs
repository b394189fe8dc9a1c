//! Durable event logs behind one seam, [`Storage`], with two engines: embedded SQLite (the
//! default: one file in the data directory) and Postgres (`--database-url`: several nodes can
//! share one database). Both keep one row per store and every store's events in one table keyed
//! by (store, seqNum), so a new store is a row, not a table. The component reaches storage
//! through `runtime/storage.rs`; the CLI and the admin API through `store_admin.rs`.

pub mod postgres;
pub mod sqlite;
mod write_gate;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One event-log row, as stored: the WIT `event-row` the component reads and writes
/// (`eventId` is the simple protocol's client event id, kept for idempotent retries).
pub use crate::bindings::EventRow as Row;

/// Why an append wrote nothing.
#[derive(Debug)]
pub enum AppendError {
    /// The stored head is not the expected one (another writer moved it); it is now this.
    HeadMoved(i64),
    /// The store's backend id is not the expected one: it was reset or replaced elsewhere.
    BackendChanged,
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
            AppendError::BackendChanged => write!(f, "the store was reset or replaced elsewhere; batch not written"),
            AppendError::Storage(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for AppendError {}

/// Durability of a SQLite commit. `Normal` (WAL + synchronous=NORMAL) survives a process crash
/// (`kill -9`); `Full` also survives power loss, at the cost of an fsync per push. (Postgres
/// commits are as durable as the server's own settings.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Durability {
    #[default]
    Normal,
    Full,
}

/// What `stores info` shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StoreInfo {
    pub store_id: String,
    pub head: i64,
    pub backend_id: String,
    pub event_count: i64,
    pub created_at: String,
    pub last_sync_at: Option<String>,
}

/// Where the event logs live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// `<data dir>/sync.db`.
    Sqlite { path: PathBuf, durability: Durability },
    /// Postgres; `node` names this process in its commit notices.
    Postgres { pg: postgres::PgConfig, node: String },
}

impl Engine {
    /// For logs and errors: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Engine::Sqlite { path, .. } => format!("SQLite {}", path.display()),
            Engine::Postgres { pg, .. } => format!("Postgres {}", postgres::redacted_url(&pg.url)),
        }
    }
}

/// Whether opening may migrate a SQLite file of the older layout (only a holder of the data
/// directory's lock may: the migration rewrites every table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrate {
    Yes,
    No,
}

/// An open connection to an engine.
pub type Db = Box<dyn Storage>;

/// Open a connection (creating the tables on first use).
pub fn open(engine: &Engine, migrate: Migrate) -> Result<Db> {
    Ok(match engine {
        Engine::Sqlite { path, durability } => Box::new(sqlite::SqliteDb::open_with(path, *durability, migrate)?),
        Engine::Postgres { pg, node } => Box::new(postgres::PostgresDb::connect(pg, node)?),
    })
}

/// The refusal of an import into a store that has events, in both engines' words.
pub fn already_has_events(store_id: &str, events: i64) -> anyhow::Error {
    anyhow::anyhow!("store {store_id:?} already has {events} events; pass --replace to overwrite it")
}

/// One connection's view of the event logs. Every method is one transaction or one read, except
/// the appends of a group (`begin_group`), which commit together.
pub trait Storage: Send {
    /// A real write (health check): fails when storage cannot take writes.
    fn probe_write(&mut self) -> Result<()>;

    /// Load a store's head and backend id, creating the store with `fresh_backend_id`.
    fn init_store(&mut self, store_id: &str, fresh_backend_id: &str) -> Result<(i64, String)>;

    /// A store's head and backend id; `None` if it does not exist.
    fn store_context(&mut self, store_id: &str) -> Result<Option<(i64, String)>>;

    /// Append `rows` and move the head to the last row's seqNum in one transaction, only if
    /// the stored head is still `expected_head` and (when given) the backend id still
    /// `expected_backend`: a writer that has not heard of a reset elsewhere writes nothing.
    fn append_batch(
        &mut self,
        store_id: &str,
        expected_head: i64,
        expected_backend: Option<&str>,
        rows: &[Row],
    ) -> Result<(), AppendError>;

    /// From here until [`Storage::end_group`], appends may share one transaction: one commit
    /// for the pushes of many stores (the caller holds every answer until the group ends).
    /// Engines that commit each append alone say `false`.
    fn begin_group(&mut self) -> bool {
        false
    }

    /// Commit the group's appends; how many there were. On an error none of them is stored.
    fn end_group(&mut self) -> Result<usize> {
        Ok(0)
    }

    /// The seqNums stored for these client event ids, in order (`None` when unknown).
    fn find_event_ids(&mut self, store_id: &str, ids: &[String]) -> Result<Vec<Option<i64>>>;

    /// The greatest seqNum created at or before `timestamp` (same text form as `createdAt`).
    fn seq_at_time(&mut self, store_id: &str, timestamp: &str) -> Result<i64>;

    fn count_after(&mut self, store_id: &str, cursor: i64) -> Result<u64>;

    /// Up to `limit` events after `cursor`, in seqNum order.
    fn read_after(&mut self, store_id: &str, cursor: i64, limit: u32) -> Result<Vec<Row>>;

    /// Every store, in id order.
    fn list_stores(&mut self) -> Result<Vec<StoreInfo>>;

    /// One store; `None` if it does not exist.
    fn store_info(&mut self, store_id: &str) -> Result<Option<StoreInfo>>;

    /// In one transaction: create the store if needed (refusing one with events unless
    /// `replace`), replace its log with `rows` (already checked to form a chain), give it
    /// `backend_id`, and let `before_commit` (given the number of rows) refuse it all. Nothing is
    /// left of a refused or failed import, not even a store it created. Returns the row count.
    fn replace_log(
        &mut self,
        store_id: &str,
        backend_id: &str,
        replace: bool,
        rows: &mut dyn Iterator<Item = Result<Row>>,
        before_commit: &mut dyn FnMut(u64) -> Result<()>,
    ) -> Result<u64>;

    /// Clear a store's log and give it a new backend id. Returns the number of events removed.
    fn reset(&mut self, store_id: &str, new_backend_id: &str) -> Result<u64>;
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
