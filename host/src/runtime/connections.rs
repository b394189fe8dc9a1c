//! `livestore:sync/connections`: frames and closes go to each socket's send queue (held while
//! a group of appends is uncommitted: `ShardIo::output`).

use super::state::{HostState, Output};
use crate::bindings::livestore::sync::connections::Host;
use crate::lock::lock;

impl Host for HostState {
    fn send(&mut self, conn: u64, frame: String) {
        self.io.output(Output::Text(conn, frame));
    }

    fn close(&mut self, conn: u64, code: u16, reason: String) {
        self.io.output(Output::Close(conn, code, reason));
    }

    /// A native store instance lives as long as any of its connections, so there is
    /// nothing to resume later (Cloudflare's shim keeps it as a WebSocket attachment).
    fn save_state(&mut self, _conn: u64, _state: String) {}

    /// The socket's reader drops these frames unread (`conn_queue.rs`): with many live
    /// pullers, the Acks of broadcasts no longer cost a shard message and a component call each.
    fn set_ignored_frames(&mut self, conn: u64, frames: Vec<String>) {
        if let Some(tx) = lock(&self.io.conns).get(&conn) {
            tx.set_ignored_frames(frames);
        }
    }
}
