//! What a store's instance holds on the host side: the shard's shared I/O and the per-store
//! wasmtime data the imports work on.

use crate::conn_queue::ConnSender;
use crate::hooks::{HookContext, Hooks};
use crate::lock::lock;
use crate::storage::Db;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// What one shard's instances share: its SQLite connection, its connections' queues and
/// the configured auth token.
pub struct ShardIo {
    pub db: Mutex<Db>,
    pub conns: Mutex<HashMap<u64, ConnSender>>,
    pub auth_token: Option<String>,
    pub max_push_events: u32,
    pub hooks: Option<Arc<Hooks>>,
    /// Admin followers of each store's committed batches.
    pub tails: Arc<crate::admin_tail::TailHub>,
    /// While a group of appends is uncommitted, what the instances send waits here.
    pub held: Mutex<Option<Vec<Output>>>,
}

/// Something an instance sends out: frames and closes to its sockets, committed batches to
/// the admin tail.
pub enum Output {
    Text(u64, String),
    Close(u64, u16, String),
    Tail(String, Vec<crate::storage::Row>),
}

impl ShardIo {
    /// Send now, or hold until the group of appends being written commits: an answer or a
    /// broadcast must never reveal events that a failed commit would then lose.
    pub fn output(&self, out: Output) {
        if let Some(held) = lock(&self.held).as_mut() {
            held.push(out);
            return;
        }
        self.deliver(out);
    }

    /// Hold everything sent from now on (a group of appends begins).
    pub fn hold_output(&self) {
        lock(&self.held).get_or_insert_with(Vec::new);
    }

    /// The group committed: send what was held, in order, and stop holding.
    pub fn release_output(&self) {
        let held = lock(&self.held).take();
        for out in held.unwrap_or_default() {
            self.deliver(out);
        }
    }

    /// The group failed: what was held must never be sent.
    pub fn discard_output(&self) {
        lock(&self.held).take();
    }

    fn deliver(&self, out: Output) {
        match out {
            // A connection missing here is gone; its Closed message follows.
            Output::Text(conn, text) => {
                if let Some(tx) = lock(&self.conns).get(&conn) {
                    tx.send_text(text);
                }
            }
            Output::Close(conn, code, reason) => {
                if let Some(tx) = lock(&self.conns).get(&conn) {
                    tx.close(code, reason);
                }
            }
            Output::Tail(store_id, rows) => self.tails.publish(&store_id, &rows),
        }
    }
}

/// The data of one store's wasmtime `Store`.
pub struct HostState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) io: Arc<ShardIo>,
    /// What hooks learn about each connection (kept from `opened`).
    pub(super) hook_contexts: HashMap<u64, HookContext>,
    /// The HTTP-transport request being handled (`caller::http-request`).
    pub(super) http_context: Option<HookContext>,
    /// The backend id the instance loaded (`storage.init-store`): a re-sync compares it with
    /// the stored one to notice a reset it was not told about.
    pub(super) backend_id: Option<String>,
    /// The highest seqNum the instance has seen in storage (opened at, appended, read): a
    /// stored head below it means the log was replaced elsewhere.
    pub(super) known_head: i64,
    /// Storage said the store was reset or replaced elsewhere: the shard drops the instance.
    pub(super) changed_elsewhere: bool,
}

/// The shared types interface has no functions.
impl crate::bindings::livestore::sync::types::Host for HostState {}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn_queue::{conn_queue, QueueBudget};
    use crate::storage::{Durability, Engine, Migrate};

    #[test]
    fn held_output_waits_for_the_commit_and_a_failed_group_sends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::Sqlite { path: dir.path().join("t.db"), durability: Durability::Normal };
        let budget = QueueBudget::new(usize::MAX);
        let (tx, _rx) = conn_queue(&budget, 1, 1 << 20);
        let tails = Arc::new(crate::admin_tail::TailHub::default());
        let mut follower = tails.follow("s");
        let io = ShardIo {
            db: Mutex::new(crate::storage::open(&engine, Migrate::Yes).unwrap()),
            conns: Mutex::new(HashMap::from([(1, tx.clone())])),
            auth_token: None,
            max_push_events: 10,
            hooks: None,
            tails,
            held: Mutex::new(None),
        };
        io.output(Output::Text(1, "now".into()));
        assert_eq!(tx.queued_bytes(), 3, "no group: sent at once");
        io.hold_output();
        io.output(Output::Text(1, "held".into()));
        io.output(Output::Tail("s".into(), vec![crate::storage::test_row(1)]));
        assert_eq!(tx.queued_bytes(), 3, "a group is open: nothing leaves");
        assert!(follower.try_recv().is_err());
        io.release_output();
        assert_eq!(tx.queued_bytes(), 7, "committed: sent");
        assert!(follower.try_recv().is_ok());
        io.hold_output();
        io.output(Output::Text(1, "never".into()));
        io.discard_output();
        io.output(Output::Text(1, "x".into()));
        assert_eq!(tx.queued_bytes(), 8, "a failed group's output is dropped; later output is not held");
    }
}
