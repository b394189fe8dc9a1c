//! One store's sync state machine: the component instance for a store holds one of these.
//! Every call comes from the store's serial owner, so head checks cannot race.
//! The LiveStore protocol (WebSocket and HTTP) lives here; the simple protocol in `simple.rs`.

use crate::encode;
use crate::events::{self, Rejection};
use crate::host::{EventRow, HookKinds, Host, LogLevel, StoreState, Telemetry};
use crate::pull::{split_into_chunks, PullStream, MAX_EVENTS_PER_CHUNK};
use crate::wire::{self, ClientMsg, PullPayload, PushPayload};
use serde_json::value::RawValue;
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
}

pub struct StoreSync {
    pub(crate) store_id: String,
    pub(crate) state: StoreState,
    pub(crate) conns: HashMap<u64, Conn>,
    /// The operator's hooks, asked once at open.
    pub(crate) hooks: HookKinds,
}

/// Why a batch was not admitted.
pub(crate) enum AdmitError {
    /// An on-push hook refused it; its message.
    Hook(String),
    Storage(String),
}

/// How a LiveStore push request ends.
enum PushOutcome {
    Ack,
    /// A typed failure; the encoded error object.
    Fail(String),
    /// A schema violation.
    Die(String),
}

impl StoreSync {
    /// Open the store: load (or create) its head and backend id.
    pub fn open(host: &mut dyn Host, store_id: &str) -> Result<Self, String> {
        let state = host.init_store(store_id, &crate::ids::new_backend_id())?;
        let hooks = host.hooks_loaded();
        Ok(StoreSync { store_id: store_id.to_string(), state, conns: HashMap::new(), hooks })
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

    pub fn connection_opened(&mut self, conn: u64, protocol: Protocol, authenticated: bool, client_id: Option<String>) {
        let client_id = client_id.unwrap_or_else(|| format!("simple-{conn}"));
        self.conns.insert(conn, Conn { protocol, authenticated, client_id, pulls: Vec::new(), saved: String::new() });
    }

    pub fn connection_closed(&mut self, conn: u64) {
        self.conns.remove(&conn);
    }

    /// Handle one text frame from `conn`.
    pub fn frame(&mut self, host: &mut dyn Host, conn: u64, text: &str) {
        match self.conns.get(&conn).map(|c| c.protocol) {
            Some(Protocol::LiveStore) => self.livestore_frame(host, conn, text),
            Some(Protocol::Simple) => self.simple_frame(host, conn, text),
            None => {}
        }
    }

    fn livestore_frame(&mut self, host: &mut dyn Host, conn: u64, text: &str) {
        match wire::decode_client_msg(text) {
            Err(defect) => host.send(conn, &encode::defect(&defect)),
            Ok(ClientMsg::Ping) => host.send(conn, &encode::pong()),
            Ok(ClientMsg::Eof) => {}
            Ok(ClientMsg::Ack { request_id }) => self.ack(host, conn, &request_id),
            Ok(ClientMsg::Interrupt { request_id }) => self.interrupt(host, conn, &request_id),
            Ok(ClientMsg::Request { id, tag, payload }) => match tag.as_str() {
                "SyncWsRpc.Push" => {
                    let frame = self.logged_push(host, conn, &id, payload, "SyncWsRpc.Push");
                    host.send(conn, &frame);
                }
                "SyncWsRpc.Pull" => self.pull(host, conn, &id, payload),
                other => host.send(conn, &encode::defect(&format!("Unknown request tag: {other}"))),
            },
        }
    }

    /// One HTTP-transport request: the JSON array of every response message.
    pub fn http_request(&mut self, host: &mut dyn Host, body: &str) -> String {
        let frames = match wire::decode_client_msg(body) {
            Err(_) if body.trim_start().starts_with('[') => vec![encode::defect("Unknown request tag: undefined")],
            Err(defect) => vec![encode::defect(&defect)],
            Ok(ClientMsg::Request { id, tag, payload }) => match tag.as_str() {
                "SyncHttpRpc.Ping" => vec![encode::exit_success_value(&id, r#"{"_tag":"SyncMessage.Pong"}"#)],
                "SyncHttpRpc.Push" => vec![self.logged_push(host, 0, &id, payload, "SyncHttpRpc.Push")],
                "SyncHttpRpc.Pull" => self.http_pull(host, &id, payload),
                other => vec![encode::defect(&format!("Unknown request tag: {other}"))],
            },
            Ok(_) => vec![encode::defect("the HTTP transport takes one Request per body")],
        };
        format!("[{}]", frames.join(","))
    }

    /// Run a push request, log it, and return its `Exit` frame (`conn` 0: HTTP transport).
    fn logged_push(
        &mut self,
        host: &mut dyn Host,
        conn: u64,
        id: &str,
        payload: Option<&RawValue>,
        what: &str,
    ) -> String {
        let outcome = self.livestore_push(host, conn, payload, what);
        self.log_push(host, conn, id, payload, &outcome);
        match outcome {
            PushOutcome::Ack => encode::exit_push_ack(id),
            PushOutcome::Fail(error) => encode::exit_fail(id, &error),
            PushOutcome::Die(message) => encode::exit_die(id, &message),
        }
    }

    /// One log line per push: store, connection, client, batch size, result.
    fn log_push(&self, host: &mut dyn Host, conn: u64, id: &str, payload: Option<&RawValue>, outcome: &PushOutcome) {
        #[derive(serde::Deserialize)]
        struct Peek<'a> {
            #[serde(borrow, default)]
            batch: Vec<PeekEvent<'a>>,
        }
        #[derive(serde::Deserialize)]
        struct PeekEvent<'a> {
            #[serde(rename = "clientId", borrow, default)]
            client_id: Option<&'a str>,
        }
        let peek = payload.and_then(|p| serde_json::from_str::<Peek<'_>>(p.get()).ok());
        let size = peek.as_ref().map_or(0, |p| p.batch.len());
        let client = peek.as_ref().and_then(|p| p.batch.first()).and_then(|e| e.client_id).unwrap_or("-");
        let (level, result) = match outcome {
            PushOutcome::Ack => (LogLevel::Info, "ok".to_string()),
            PushOutcome::Fail(error) => (LogLevel::Info, error_tag(error)),
            PushOutcome::Die(message) => (LogLevel::Warn, format!("invalid: {message}")),
        };
        let line = format!(
            // Debug formatting quotes and escapes what clients chose (newlines cannot forge lines).
            "push store={:?} conn={conn} request={id:?} client={client:?} events={size} head={} result={result}",
            self.store_id, self.state.head
        );
        host.log(level, &line);
    }

    pub(crate) fn check_store_id(&self, named: &str) -> Result<(), String> {
        if named == self.store_id {
            Ok(())
        } else {
            Err(encode::unknown_error(
                "StoreMismatchError",
                &format!("request names store {named:?} but this connection belongs to store {:?}", self.store_id),
                "validate",
            ))
        }
    }

    fn livestore_push(
        &mut self,
        host: &mut dyn Host,
        conn: u64,
        payload: Option<&RawValue>,
        what: &str,
    ) -> PushOutcome {
        let started = std::time::Instant::now();
        let req: PushPayload<'_> = match wire::parse_payload(payload, what) {
            Ok(req) => req,
            Err(msg) => {
                host.record(Telemetry::PushRejected("invalid-payload"));
                return PushOutcome::Die(msg);
            }
        };
        if let Err(error) = self.check_store_id(&req.store_id) {
            host.record(Telemetry::PushRejected("store-mismatch"));
            return PushOutcome::Fail(error);
        }
        if req.batch.is_empty() {
            return PushOutcome::Ack;
        }
        let limit = host.max_push_events() as usize;
        if req.batch.len() > limit {
            host.record(Telemetry::PushRejected("too-many-events"));
            let message = format!("a push of {} events exceeds this server's limit of {limit}", req.batch.len());
            return PushOutcome::Fail(encode::unknown_error("BatchTooLargeError", &message, "validate"));
        }
        if let Some(received) = req.backend_id.into_option() {
            if received != self.state.backend_id {
                host.record(Telemetry::PushRejected("backend-id-mismatch"));
                return PushOutcome::Fail(encode::backend_id_mismatch_error(&self.state.backend_id, &received));
            }
        }
        if let Err(rejection) = events::check_batch(self.state.head, &req.batch) {
            return PushOutcome::Fail(match rejection {
                Rejection::ServerAhead { head, provided } => {
                    host.record(Telemetry::PushRejected("server-ahead"));
                    encode::server_ahead_error(head, provided)
                }
                Rejection::BrokenChain { message, .. } => {
                    host.record(Telemetry::PushRejected("invalid-batch"));
                    encode::unknown_error("InvalidBatchError", &message, "validate")
                }
            });
        }
        let rows = events::to_rows(&req.batch, &crate::clock::now_iso());
        match self.admit(host, &rows, conn, None, started) {
            Ok(()) => PushOutcome::Ack,
            Err(AdmitError::Hook(message)) => {
                PushOutcome::Fail(encode::unknown_error("HookRejected", &message, "onPush"))
            }
            Err(AdmitError::Storage(message)) => {
                PushOutcome::Fail(encode::unknown_error("StorageError", &message, "insert"))
            }
        }
    }

    /// Run the on-push hooks, commit validated rows that continue the head, then publish
    /// them. Publish after commit; the caller acks after this returns (ack after publish);
    /// after-push hooks are handed the batch last (the host runs them off this path).
    /// `conn` is the pushing connection (0: the HTTP request); `origin` gets no broadcast.
    pub(crate) fn admit(
        &mut self,
        host: &mut dyn Host,
        rows: &[EventRow],
        conn: u64,
        origin: Option<u64>,
        started: std::time::Instant,
    ) -> Result<(), AdmitError> {
        if self.hooks.on_push {
            if let Err(message) = host.on_push_hook(conn, rows) {
                host.record(Telemetry::PushRejected("hook"));
                return Err(AdmitError::Hook(message));
            }
        }
        if let Err(message) = host.append_batch(&self.store_id, self.state.head, rows) {
            host.record(Telemetry::PushRejected("storage-error"));
            return Err(AdmitError::Storage(message));
        }
        self.state.head = rows.last().map(|r| r.seq_num).unwrap_or(self.state.head);
        self.publish(host, rows, origin);
        if self.hooks.after_push {
            host.after_push_hook(conn, rows);
        }
        let micros = started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
        host.record(Telemetry::PushAccepted { events: rows.len() as u32, micros });
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
                    let msg = simple_msg.get_or_insert_with(|| crate::simple::events_message(rows));
                    host.send(conn, msg);
                }
                continue;
            }
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
                    host.record(Telemetry::ChunkSent);
                }
                stream.cursor = self.state.head;
            }
        }
    }

    /// The cursor of a pull request, or the encoded typed error.
    fn pull_cursor(&self, req: &PullPayload) -> Result<i64, String> {
        self.check_store_id(&req.store_id)?;
        match &req.cursor {
            wire::EffectOption::None => Ok(0),
            wire::EffectOption::Some { value } if value.backend_id != self.state.backend_id => {
                Err(encode::backend_id_mismatch_error(&self.state.backend_id, &value.backend_id))
            }
            wire::EffectOption::Some { value } => Ok(value.event_sequence_number),
        }
    }

    /// Decode a pull request and its cursor and ask the on-pull hooks, or the frame that
    /// fails it (`live` is false for the HTTP transport).
    fn parse_pull(
        &self,
        host: &mut dyn Host,
        conn: u64,
        id: &str,
        payload: Option<&RawValue>,
        what: &str,
    ) -> Result<(PullPayload, i64), String> {
        let req: PullPayload = wire::parse_payload(payload, what).map_err(|msg| encode::exit_die(id, &msg))?;
        let cursor = self.pull_cursor(&req).map_err(|error| encode::exit_fail(id, &error))?;
        if self.hooks.on_pull {
            host.on_pull_hook(conn, cursor, req.live)
                .map_err(|message| encode::exit_fail(id, &encode::unknown_error("HookRejected", &message, "onPull")))?;
        }
        Ok((req, cursor))
    }

    /// A stream from `cursor` with the count of events after it, or the frame that fails it.
    fn new_stream(&self, host: &mut dyn Host, id: &str, cursor: i64, live: bool) -> Result<PullStream, String> {
        let remaining = host
            .count_after(&self.store_id, cursor)
            .map_err(|message| encode::exit_fail(id, &encode::unknown_error("StorageError", &message, "count")))?;
        Ok(PullStream { request_id: id.to_string(), live, cursor, remaining, awaiting_ack: false, caught_up: false })
    }

    fn pull(&mut self, host: &mut dyn Host, conn: u64, id: &str, payload: Option<&RawValue>) {
        let (req, cursor) = match self.parse_pull(host, conn, id, payload, "SyncWsRpc.Pull") {
            Ok(parsed) => parsed,
            Err(frame) => return host.send(conn, &frame),
        };
        let Some(state) = self.conns.get(&conn) else { return };
        if state.pulls.iter().any(|p| p.request_id == id) {
            return host.send(conn, &encode::exit_die(id, &format!("request id {id} is already running a pull")));
        }
        let mut stream = match self.new_stream(host, id, cursor, req.live) {
            Ok(stream) => stream,
            Err(frame) => return host.send(conn, &frame),
        };
        host.log(
            LogLevel::Info,
            &format!(
                "pull store={:?} conn={conn} request={id:?} live={} cursor={cursor} events={}",
                self.store_id, req.live, stream.remaining
            ),
        );
        match self.next_chunk(host, &mut stream) {
            Ok(frame) => {
                host.send(conn, &frame);
                if let Some(state) = self.conns.get_mut(&conn) {
                    state.pulls.push(stream);
                }
            }
            Err(frame) => host.send(conn, &frame),
        }
    }

    /// A non-streaming pull (HTTP transport): every chunk, then `Exit`, without Acks.
    fn http_pull(&mut self, host: &mut dyn Host, id: &str, payload: Option<&RawValue>) -> Vec<String> {
        let mut stream = match self.parse_pull(host, 0, id, payload, "SyncHttpRpc.Pull") {
            Ok((_, cursor)) => match self.new_stream(host, id, cursor, false) {
                Ok(stream) => stream,
                Err(frame) => return vec![frame],
            },
            Err(frame) => return vec![frame],
        };
        let mut frames = Vec::new();
        while !stream.caught_up {
            match self.next_chunk(host, &mut stream) {
                Ok(frame) => frames.push(frame),
                Err(frame) => return vec![frame],
            }
        }
        frames.push(encode::exit_stream_done(id));
        frames
    }

    /// The stream's next catch-up chunk, or the frame that fails the stream.
    fn next_chunk(&self, host: &mut dyn Host, stream: &mut PullStream) -> Result<String, String> {
        let rows = if stream.remaining == 0 {
            Vec::new()
        } else {
            host.read_after(&self.store_id, stream.cursor, MAX_EVENTS_PER_CHUNK as u32).map_err(|message| {
                encode::exit_fail(&stream.request_id, &encode::unknown_error("StorageError", &message, "select"))
            })?
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
        stream.awaiting_ack = true;
        stream.caught_up = remaining == 0;
        host.record(Telemetry::ChunkSent);
        Ok(encode::pull_chunk(&stream.request_id, &items, remaining, &self.state.backend_id))
    }

    fn ack(&mut self, host: &mut dyn Host, conn: u64, request_id: &str) {
        let Some(state) = self.conns.get_mut(&conn) else { return };
        let Some(pos) = state.pulls.iter().position(|p| p.request_id == request_id) else { return };
        if !state.pulls[pos].awaiting_ack {
            return;
        }
        let mut stream = state.pulls.swap_remove(pos);
        stream.awaiting_ack = false;
        let keep = if !stream.caught_up {
            match self.next_chunk(host, &mut stream) {
                Ok(frame) => {
                    host.send(conn, &frame);
                    true
                }
                Err(frame) => {
                    host.send(conn, &frame);
                    false
                }
            }
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
        let Some(state) = self.conns.get_mut(&conn) else { return };
        if let Some(pos) = state.pulls.iter().position(|p| p.request_id == request_id) {
            state.pulls.swap_remove(pos);
            host.send(conn, &encode::exit_interrupted(request_id));
        }
    }
}

/// The `_tag` of an encoded error object, for logs.
fn error_tag(error: &str) -> String {
    serde_json::from_str::<serde_json::Value>(error)
        .ok()
        .and_then(|v| v.get("_tag").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "error".to_string())
}
