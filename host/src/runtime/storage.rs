//! `livestore:sync/storage` on the shard's SQLite connection (`crate::storage`).

use super::state::{HostState, Output};
use crate::bindings::livestore::sync::storage::Host;
use crate::bindings::{AppendError, EventRow, StoreState};
use crate::lock::lock;
use crate::storage;
use crate::telemetry::STORAGE_APPEND;

/// A storage failure becomes the component's error text, and a line in the server log with
/// SQLite's own message (the client only learns that its request failed).
fn failed(operation: &'static str, store_id: &str, error: anyhow::Error) -> String {
    let message = format!("{error:#}");
    tracing::error!(store_id, operation, error = message.as_str(), "storage failed");
    message
}

impl Host for HostState {
    fn init_store(&mut self, store_id: String, fresh_backend_id: String) -> Result<StoreState, String> {
        let (head, backend_id) =
            lock(&self.io.db).init_store(&store_id, &fresh_backend_id).map_err(|e| failed("open", &store_id, e))?;
        self.backend_id = Some(backend_id.clone());
        self.known_head = self.known_head.max(head);
        Ok(StoreState { head, backend_id })
    }

    fn append_batch(&mut self, store_id: String, expected_head: i64, events: Vec<EventRow>) -> Result<(), AppendError> {
        let started = std::time::Instant::now();
        let appended = lock(&self.io.db).append_batch(&store_id, expected_head, self.backend_id.as_deref(), &events);
        metrics::histogram!(STORAGE_APPEND).record(started.elapsed());
        let changed = "the store was reset or replaced on another node; reconnect".to_string();
        appended.map_err(|e| match e {
            // Below what this instance already saw: the log was replaced under it.
            storage::AppendError::HeadMoved(head) if head < self.known_head => {
                self.changed_elsewhere = true;
                AppendError::StorageFailed(changed.clone())
            }
            storage::AppendError::HeadMoved(head) => AppendError::HeadMoved(head),
            storage::AppendError::BackendChanged => {
                self.changed_elsewhere = true;
                AppendError::StorageFailed(changed.clone())
            }
            storage::AppendError::Storage(e) => AppendError::StorageFailed(failed("append", &store_id, e)),
        })?;
        self.known_head = self.known_head.max(events.last().map_or(0, |e| e.seq_num));
        self.io.output(Output::Tail(store_id, events));
        Ok(())
    }

    fn find_event_ids(&mut self, store_id: String, ids: Vec<String>) -> Result<Vec<Option<i64>>, String> {
        lock(&self.io.db).find_event_ids(&store_id, &ids).map_err(|e| failed("find ids", &store_id, e))
    }

    fn seq_at_time(&mut self, store_id: String, timestamp: String) -> Result<i64, String> {
        lock(&self.io.db).seq_at_time(&store_id, &timestamp).map_err(|e| failed("seq at time", &store_id, e))
    }

    fn count_after(&mut self, store_id: String, cursor: i64) -> Result<u64, String> {
        lock(&self.io.db).count_after(&store_id, cursor).map_err(|e| failed("count", &store_id, e))
    }

    fn read_after(&mut self, store_id: String, cursor: i64, limit: u32) -> Result<Vec<EventRow>, String> {
        let rows = lock(&self.io.db).read_after(&store_id, cursor, limit).map_err(|e| failed("read", &store_id, e))?;
        self.known_head = self.known_head.max(rows.last().map_or(0, |r| r.seq_num));
        Ok(rows)
    }
}
