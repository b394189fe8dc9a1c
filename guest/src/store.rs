//! One store's sync state machine: the component instance for a store holds one of these.
//! Every call comes from the store's serial owner, so head checks cannot race.

use crate::encode;
use crate::events::{self, Rejection};
use crate::host::{Host, StoreState};
use crate::pull::{split_into_chunks, PullStream, MAX_EVENTS_PER_CHUNK};
use crate::wire::{self, ClientMsg, PullPayload, PushPayload};
use serde_json::value::RawValue;
use std::collections::HashMap;

#[derive(Default)]
struct Conn {
    pulls: Vec<PullStream>,
}

pub struct StoreSync {
    store_id: String,
    state: StoreState,
    conns: HashMap<u64, Conn>,
}

impl StoreSync {
    /// Open the store: load (or create) its head and backend id.
    pub fn open(host: &mut dyn Host, store_id: &str) -> Result<Self, String> {
        let state = host.init_store(store_id, &crate::ids::new_backend_id())?;
        Ok(StoreSync { store_id: store_id.to_string(), state, conns: HashMap::new() })
    }

    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    pub fn head(&self) -> i64 {
        self.state.head
    }

    pub fn backend_id(&self) -> &str {
        &self.state.backend_id
    }

    pub fn connection_opened(&mut self, conn: u64) {
        self.conns.entry(conn).or_default();
    }

    pub fn connection_closed(&mut self, conn: u64) {
        self.conns.remove(&conn);
    }

    /// Handle one text frame from `conn`.
    pub fn frame(&mut self, host: &mut dyn Host, conn: u64, text: &str) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        match wire::decode_client_msg(text) {
            Err(defect) => host.send(conn, &encode::defect(&defect)),
            Ok(ClientMsg::Ping) => host.send(conn, &encode::pong()),
            Ok(ClientMsg::Eof) => {}
            Ok(ClientMsg::Ack { request_id }) => self.ack(host, conn, &request_id),
            Ok(ClientMsg::Interrupt { request_id }) => self.interrupt(host, conn, &request_id),
            Ok(ClientMsg::Request { id, tag, payload }) => match tag.as_str() {
                "SyncWsRpc.Push" => self.push(host, conn, &id, payload),
                "SyncWsRpc.Pull" => self.pull(host, conn, &id, payload),
                other => host.send(conn, &encode::defect(&format!("Unknown request tag: {other}"))),
            },
        }
    }

    fn check_store_id(&self, named: &str) -> Result<(), String> {
        if named == self.store_id {
            Ok(())
        } else {
            Err(encode::unknown_error(
                "StoreMismatchError",
                &format!("request names store '{named}' but this connection belongs to store '{}'", self.store_id),
                "validate",
            ))
        }
    }

    fn push(&mut self, host: &mut dyn Host, conn: u64, id: &str, payload: Option<&RawValue>) {
        let req: PushPayload<'_> = match wire::parse_payload(payload, "SyncWsRpc.Push") {
            Ok(req) => req,
            Err(msg) => return host.send(conn, &encode::exit_die(id, &msg)),
        };
        if let Err(error) = self.check_store_id(&req.store_id) {
            return host.send(conn, &encode::exit_fail(id, &error));
        }
        if req.batch.is_empty() {
            return host.send(conn, &encode::exit_push_ack(id));
        }
        if let Some(received) = req.backend_id.into_option() {
            if received != self.state.backend_id {
                let error = encode::backend_id_mismatch_error(&self.state.backend_id, &received);
                return host.send(conn, &encode::exit_fail(id, &error));
            }
        }
        if let Err(rejection) = events::check_batch(self.state.head, &req.batch) {
            let error = match rejection {
                Rejection::ServerAhead { head, provided } => encode::server_ahead_error(head, provided),
                Rejection::BrokenChain { message, .. } => {
                    encode::unknown_error("InvalidBatchError", &message, "validate")
                }
            };
            return host.send(conn, &encode::exit_fail(id, &error));
        }
        let rows = events::to_rows(&req.batch, &crate::clock::now_iso());
        if let Err(message) = host.append_batch(&self.store_id, self.state.head, &rows) {
            let error = encode::unknown_error("StorageError", &message, "insert");
            return host.send(conn, &encode::exit_fail(id, &error));
        }
        self.state.head = rows.last().map(|r| r.seq_num).unwrap_or(self.state.head);
        // Publish after commit, ack after publish.
        self.publish(host, &rows);
        host.send(conn, &encode::exit_push_ack(id));
    }

    /// Deliver a committed batch: live, caught-up streams get it now; streams still catching
    /// up will read it from storage in order.
    fn publish(&mut self, host: &mut dyn Host, rows: &[crate::host::EventRow]) {
        let mut chunks: Option<Vec<(String, usize)>> = None;
        for (&conn, state) in self.conns.iter_mut() {
            for stream in state.pulls.iter_mut() {
                if !stream.caught_up {
                    stream.remaining += rows.len() as u64;
                    continue;
                }
                if !stream.live {
                    continue;
                }
                let chunks = chunks.get_or_insert_with(|| split_into_chunks(rows));
                for (items, _) in chunks.iter() {
                    host.send(conn, &encode::pull_chunk(&stream.request_id, items, 0, &self.state.backend_id));
                }
                stream.cursor = self.state.head;
            }
        }
    }

    fn pull(&mut self, host: &mut dyn Host, conn: u64, id: &str, payload: Option<&RawValue>) {
        let req: PullPayload = match wire::parse_payload(payload, "SyncWsRpc.Pull") {
            Ok(req) => req,
            Err(msg) => return host.send(conn, &encode::exit_die(id, &msg)),
        };
        if let Err(error) = self.check_store_id(&req.store_id) {
            return host.send(conn, &encode::exit_fail(id, &error));
        }
        let cursor = match req.cursor.into_option() {
            None => 0,
            Some(c) if c.backend_id != self.state.backend_id => {
                let error = encode::backend_id_mismatch_error(&self.state.backend_id, &c.backend_id);
                return host.send(conn, &encode::exit_fail(id, &error));
            }
            Some(c) => c.event_sequence_number,
        };
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        if state.pulls.iter().any(|p| p.request_id == id) {
            return host.send(conn, &encode::exit_die(id, &format!("request id {id} is already running a pull")));
        }
        let remaining = match host.count_after(&self.store_id, cursor) {
            Ok(n) => n,
            Err(message) => {
                let error = encode::unknown_error("StorageError", &message, "count");
                return host.send(conn, &encode::exit_fail(id, &error));
            }
        };
        let mut stream = PullStream {
            request_id: id.to_string(),
            live: req.live,
            cursor,
            remaining,
            awaiting_ack: false,
            caught_up: false,
        };
        if self.send_next_chunk(host, conn, &mut stream) {
            if let Some(state) = self.conns.get_mut(&conn) {
                state.pulls.push(stream);
            }
        }
    }

    /// Send the stream's next catch-up chunk. Returns false when the stream failed and ended.
    fn send_next_chunk(&self, host: &mut dyn Host, conn: u64, stream: &mut PullStream) -> bool {
        let rows = if stream.remaining == 0 {
            Vec::new()
        } else {
            match host.read_after(&self.store_id, stream.cursor, MAX_EVENTS_PER_CHUNK as u32) {
                Ok(rows) => rows,
                Err(message) => {
                    let error = encode::unknown_error("StorageError", &message, "select");
                    host.send(conn, &encode::exit_fail(&stream.request_id, &error));
                    return false;
                }
            }
        };
        let (items, count) = split_into_chunks(&rows).into_iter().next().unwrap_or_default();
        if let Some(last) = rows.get(count.wrapping_sub(1)) {
            stream.cursor = last.seq_num;
        }
        let mut remaining = stream.remaining.saturating_sub(count as u64);
        if rows.len() < MAX_EVENTS_PER_CHUNK && count == rows.len() {
            // Storage returned less than asked: nothing is left, whatever the count said.
            remaining = 0;
        } else if remaining == 0 && count < rows.len() {
            remaining = (rows.len() - count) as u64;
        }
        stream.remaining = remaining;
        host.send(conn, &encode::pull_chunk(&stream.request_id, &items, stream.remaining, &self.state.backend_id));
        stream.awaiting_ack = true;
        stream.caught_up = stream.remaining == 0;
        true
    }

    fn ack(&mut self, host: &mut dyn Host, conn: u64, request_id: &str) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(pos) = state.pulls.iter().position(|p| p.request_id == request_id) else {
            return;
        };
        let mut stream = state.pulls.swap_remove(pos);
        if !stream.awaiting_ack {
            state.pulls.push(stream);
            return;
        }
        stream.awaiting_ack = false;
        let keep = if !stream.caught_up {
            self.send_next_chunk(host, conn, &mut stream)
        } else if stream.live {
            true
        } else {
            host.send(conn, &encode::exit_stream_done(request_id));
            false
        };
        if keep {
            if let Some(state) = self.conns.get_mut(&conn) {
                state.pulls.push(stream);
            }
        }
    }

    fn interrupt(&mut self, host: &mut dyn Host, conn: u64, request_id: &str) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some(pos) = state.pulls.iter().position(|p| p.request_id == request_id) {
            state.pulls.swap_remove(pos);
            host.send(conn, &encode::exit_interrupted(request_id));
        }
    }
}
