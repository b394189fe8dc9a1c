//! What the sync logic needs from its host: storage and outgoing frames.
//! The component glue implements it with WIT imports; unit tests implement it in memory.

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
}

/// A store's persistent context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreState {
    pub head: i64,
    pub backend_id: String,
}

pub trait Host {
    fn init_store(&mut self, store_id: &str, fresh_backend_id: &str) -> Result<StoreState, String>;
    fn append_batch(&mut self, store_id: &str, expected_head: i64, events: &[EventRow]) -> Result<(), String>;
    fn count_after(&mut self, store_id: &str, cursor: i64) -> Result<u64, String>;
    fn read_after(&mut self, store_id: &str, cursor: i64, limit: u32) -> Result<Vec<EventRow>, String>;
    fn send(&mut self, conn: u64, frame: &str);
    fn close(&mut self, conn: u64, code: u16, reason: &str);
}
