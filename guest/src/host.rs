//! What the sync logic needs from its host: storage, outgoing frames, token checks, metrics,
//! and time and randomness, so the logic itself is deterministic. The component glue
//! implements it with WIT and WASI imports; unit tests implement it in memory (`MemHost`).

/// One event-log row; mirrors `livestore:sync/types.event-row`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub seq_num: i64,
    pub parent_seq_num: i64,
    pub name: String,
    /// JSON text of the args; `None` stores SQL NULL.
    pub args: Option<String>,
    pub created_at: String,
    pub client_id: String,
    pub session_id: String,
    /// The client's id for the event (simple protocol).
    pub event_id: Option<String>,
}

/// A store's persistent context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreState {
    pub head: i64,
    pub backend_id: String,
}

/// Why a push was refused (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushRejection {
    InvalidPayload,
    StoreMismatch,
    TooManyEvents,
    BackendIdMismatch,
    ServerAhead,
    InvalidBatch,
    Hook,
    StorageError,
}

/// Metrics the component reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Telemetry {
    PushAccepted { events: u32, micros: u64 },
    PushRejected(PushRejection),
    ChunkSent,
}

/// Who a hook call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Connection(u64),
    /// The LiveStore HTTP-transport request being handled.
    HttpRequest,
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Connection(conn) => write!(f, "{conn}"),
            Caller::HttpRequest => f.write_str("http"),
        }
    }
}

/// Why an append wrote nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendError {
    /// The stored head is not the expected one (another writer moved it); it is now this.
    HeadMoved(i64),
    Storage(String),
}

/// Server settings, read once when a store opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The most events one push may carry.
    pub max_push_events: u32,
}

/// Which operator hooks are loaded (the component skips the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HookKinds {
    pub on_push: bool,
    pub on_pull: bool,
    pub after_push: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

pub trait Host {
    fn init_store(&mut self, store_id: &str, fresh_backend_id: &str) -> Result<StoreState, String>;
    fn append_batch(&mut self, store_id: &str, expected_head: i64, events: &[EventRow]) -> Result<(), AppendError>;
    fn find_event_ids(&mut self, store_id: &str, ids: &[String]) -> Result<Vec<Option<i64>>, String>;
    fn seq_at_time(&mut self, store_id: &str, timestamp: &str) -> Result<i64, String>;
    fn count_after(&mut self, store_id: &str, cursor: i64) -> Result<u64, String>;
    fn read_after(&mut self, store_id: &str, cursor: i64, limit: u32) -> Result<Vec<EventRow>, String>;
    fn send(&mut self, conn: u64, frame: &str);
    fn close(&mut self, conn: u64, code: u16, reason: &str);
    /// Keep `conn`'s resumable state with its socket (see `snapshot.rs`).
    fn save_state(&mut self, conn: u64, state: &str);
    /// Frames of `conn` the host may drop unread, replacing the last list (see `ignored.rs`).
    fn set_ignored_frames(&mut self, conn: u64, frames: &[String]);
    fn check_token(&mut self, token: &str) -> bool;
    fn record(&mut self, event: Telemetry);
    fn log(&mut self, level: LogLevel, message: &str);
    /// The server's settings (read once per store instance).
    fn settings(&mut self) -> Settings;
    /// Which hooks are loaded.
    fn hooks_loaded(&mut self) -> HookKinds;
    /// The operator's on-push hooks; an error rejects the batch.
    fn on_push_hook(&mut self, caller: Caller, rows: &[EventRow]) -> Result<(), String>;
    /// The operator's on-pull hooks; an error fails the pull.
    fn on_pull_hook(&mut self, caller: Caller, cursor: i64, live: bool) -> Result<(), String>;
    /// The operator's after-push hooks, run by the host off the push's path.
    fn after_push_hook(&mut self, caller: Caller, rows: &[EventRow]);
    /// Wall-clock time in milliseconds since the Unix epoch (`createdAt` of new events).
    fn now_millis(&mut self) -> i64;
    /// A monotonic clock in microseconds (push durations).
    fn monotonic_micros(&mut self) -> u64;
    /// Fill `buf` with random bytes (new backend ids).
    fn random_bytes(&mut self, buf: &mut [u8]);
}
