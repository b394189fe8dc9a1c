//! The protocol-neutral core of one store: its head and backend id, its connections, and
//! admission of a validated batch (hooks, commit, publish). Every call comes from the store's
//! serial owner, so head checks cannot race. The protocols (`livestore.rs`, `simple.rs`) and
//! pull streaming (`pull.rs`) build on it; it knows none of them.

use crate::chunks::{split_into_chunks, PullStream};
use crate::errors::RequestError;
use crate::host::{
    AppendError, Caller, EventRow, HookKinds, Host, LogLevel, PushRejection, Settings, StoreState, Telemetry,
};
use crate::{encode, simple_wire};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    LiveStore,
    Simple,
}

pub(crate) struct Conn {
    pub(crate) protocol: Protocol,
    pub(crate) authenticated: bool,
    pub(crate) client_id: String,
    pub(crate) pulls: Vec<PullStream>,
    /// The last snapshot handed to the host (`snapshot.rs`).
    pub(crate) saved: String,
    /// The frames the host was last told it may drop (`ignored.rs`).
    pub(crate) ignored: Vec<String>,
}

pub struct Core {
    pub(crate) store_id: String,
    pub(crate) state: StoreState,
    pub(crate) conns: HashMap<u64, Conn>,
    /// The operator's hooks, asked once at open.
    pub(crate) hooks: HookKinds,
    /// The server's settings, asked once at open.
    pub(crate) settings: Settings,
}

/// Why a batch was not admitted.
pub(crate) enum AdmitError {
    /// An on-push hook refused it; its message.
    Hook(String),
    /// Another writer moved the head (the cached head is updated to it).
    HeadMoved(i64),
    Storage(String),
}

impl Core {
    /// Open the store: load (or create) its head and backend id.
    pub fn open(host: &mut dyn Host, store_id: &str) -> Result<Core, String> {
        let fresh_backend_id = crate::ids::new_backend_id(host);
        let state = host.init_store(store_id, &fresh_backend_id)?;
        let hooks = host.hooks_loaded();
        let settings = host.settings();
        Ok(Core { store_id: store_id.to_string(), state, conns: HashMap::new(), hooks, settings })
    }

    /// Up to `limit` stored events after `cursor`. Stored `args` are inlined into frames as
    /// they are, so text that is not JSON (edited outside the server) fails the read, naming
    /// the event, instead of corrupting a frame.
    pub(crate) fn read_stored(&self, host: &mut dyn Host, cursor: i64, limit: u32) -> Result<Vec<EventRow>, String> {
        let rows = host.read_after(&self.store_id, cursor, limit)?;
        for row in &rows {
            if let Some(args) = &row.args {
                if serde_json::from_str::<serde::de::IgnoredAny>(args).is_err() {
                    return Err(format!(
                        "store {:?}: the stored args of event {} are not JSON (edited outside the server?)",
                        self.store_id, row.seq_num
                    ));
                }
            }
        }
        Ok(rows)
    }

    pub(crate) fn check_store_id(&self, named: &str) -> Result<(), RequestError> {
        if named == self.store_id {
            Ok(())
        } else {
            Err(RequestError::StoreMismatch { named: named.to_string(), store: self.store_id.clone() })
        }
    }

    /// Run the on-push hooks, commit validated rows that continue the head, then publish
    /// them. Publish after commit; the caller acks after this returns (ack after publish);
    /// after-push hooks are handed the batch last (the host runs them off this path).
    /// `caller` pushed the batch; `origin` gets no broadcast; `started` is the host's
    /// monotonic time when the push arrived.
    pub(crate) fn admit(
        &mut self,
        host: &mut dyn Host,
        rows: &[EventRow],
        caller: Caller,
        origin: Option<u64>,
        started: u64,
    ) -> Result<(), AdmitError> {
        if self.hooks.on_push {
            if let Err(message) = host.on_push_hook(caller, rows) {
                host.record(Telemetry::PushRejected(PushRejection::Hook));
                return Err(AdmitError::Hook(message));
            }
        }
        match host.append_batch(&self.store_id, self.state.head, rows) {
            Ok(()) => {}
            Err(AppendError::HeadMoved(head)) => {
                // Another writer (another node) committed first. Its events reach this
                // instance's live pulls before the pusher learns of them, so a client that
                // rebases on the error finds them.
                if let Err(message) = self.advance_to(host, head) {
                    host.log(LogLevel::Warn, &format!("delivering events another writer committed: {message}"));
                }
                host.record(Telemetry::PushRejected(PushRejection::ServerAhead));
                return Err(AdmitError::HeadMoved(head));
            }
            Err(AppendError::Storage(message)) => {
                host.record(Telemetry::PushRejected(PushRejection::StorageError));
                return Err(AdmitError::Storage(message));
            }
        }
        self.state.head = rows.last().map(|r| r.seq_num).unwrap_or(self.state.head);
        self.publish(host, rows, origin);
        if self.hooks.after_push {
            host.after_push_hook(caller, rows);
        }
        let micros = host.monotonic_micros().saturating_sub(started);
        host.record(Telemetry::PushAccepted { events: rows.len() as u32, micros });
        Ok(())
    }

    /// Another writer (another node sharing the database) committed up to `head`: read what
    /// this instance has not seen, in order, and deliver it as if it had been pushed here. The
    /// cached head moves only past events that were delivered; on a failed read it stays, and
    /// the next notification or push catches up.
    pub(crate) fn advance_to(&mut self, host: &mut dyn Host, head: i64) -> Result<(), String> {
        while self.state.head < head {
            let rows = self.read_stored(host, self.state.head, 1000)?;
            let Some(last) = rows.last() else {
                return Err(format!("the stored head is {head} but no events follow {}", self.state.head));
            };
            self.state.head = last.seq_num;
            self.publish(host, &rows, None);
        }
        Ok(())
    }

    /// Deliver a committed batch: live, caught-up LiveStore streams get chunks now (streams
    /// still catching up read it from storage in order); authenticated simple clients other
    /// than `origin` get an `events` message.
    fn publish(&mut self, host: &mut dyn Host, rows: &[EventRow], origin: Option<u64>) {
        let mut chunks: Option<Vec<(String, usize)>> = None;
        let mut simple_msg: Option<String> = None;
        for (&conn, state) in self.conns.iter_mut() {
            if state.protocol == Protocol::Simple {
                if state.authenticated && Some(conn) != origin {
                    let msg = simple_msg
                        .get_or_insert_with(|| simple_wire::events_message(rows, &crate::clock::now_iso(host), ""));
                    host.send(conn, msg);
                }
                continue;
            }
            for stream in state.pulls.iter_mut() {
                // Rows at or before the stream's cursor already reached it: with several nodes,
                // a catch-up read from storage can run ahead of this instance's head.
                let fresh = rows.iter().position(|r| r.seq_num > stream.cursor).unwrap_or(rows.len());
                if !stream.caught_up {
                    stream.remaining += (rows.len() - fresh) as u64;
                    continue;
                }
                if !stream.live || fresh == rows.len() {
                    continue;
                }
                let own;
                let chunks = if fresh == 0 {
                    chunks.get_or_insert_with(|| split_into_chunks(rows))
                } else {
                    own = split_into_chunks(&rows[fresh..]);
                    &own
                };
                for (items, _) in chunks.iter() {
                    host.send(conn, &encode::pull_chunk(&stream.request_id, items, 0, &self.state.backend_id));
                    host.record(Telemetry::ChunkSent);
                }
                stream.cursor = stream.cursor.max(self.state.head);
            }
        }
    }
}
