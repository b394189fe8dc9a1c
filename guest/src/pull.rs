//! Pull streaming for the LiveStore protocol: a pull catches up from storage one chunk per
//! Ack, then (when live) receives broadcasts from `Core::publish`; `Interrupt` ends it. The
//! HTTP transport's pull sends every chunk at once.

use crate::chunks::{split_into_chunks, PullStream, MAX_EVENTS_PER_CHUNK};
use crate::core::Core;
use crate::encode;
use crate::errors::RequestError;
use crate::host::{Caller, Host, LogLevel, Telemetry};
use crate::wire::{self, PullPayload};
use serde_json::value::RawValue;

/// Pulls one connection may run at once. A LiveStore client runs one; the bound keeps each
/// frame's work (and the connection's saved state) small whatever a client sends.
pub const MAX_PULLS_PER_CONNECTION: usize = 16;

impl Core {
    /// The cursor of a pull request.
    fn pull_cursor(&self, req: &PullPayload) -> Result<i64, RequestError> {
        self.check_store_id(&req.store_id)?;
        match &req.cursor {
            wire::EffectOption::None => Ok(0),
            wire::EffectOption::Some { value } if value.backend_id != self.state.backend_id => {
                Err(RequestError::BackendIdMismatch {
                    expected: self.state.backend_id.clone(),
                    received: value.backend_id.clone(),
                })
            }
            wire::EffectOption::Some { value } => Ok(value.event_sequence_number),
        }
    }

    /// Decode a pull request and its cursor and ask the on-pull hooks (`live` is false for
    /// the HTTP transport).
    fn parse_pull(
        &self,
        host: &mut dyn Host,
        caller: Caller,
        payload: Option<&RawValue>,
        what: &str,
    ) -> Result<(PullPayload, i64), RequestError> {
        let req: PullPayload = wire::parse_payload(payload, what).map_err(RequestError::Invalid)?;
        let cursor = self.pull_cursor(&req)?;
        if self.hooks.on_pull {
            host.on_pull_hook(caller, cursor, req.live)
                .map_err(|message| RequestError::HookRejected { message, stage: "onPull" })?;
        }
        Ok((req, cursor))
    }

    /// A stream from `cursor` with the count of events after it.
    fn new_stream(&self, host: &mut dyn Host, id: &str, cursor: i64, live: bool) -> Result<PullStream, RequestError> {
        let remaining = host
            .count_after(&self.store_id, cursor)
            .map_err(|message| RequestError::Storage { message, stage: "count" })?;
        Ok(PullStream { request_id: id.to_string(), live, cursor, remaining, awaiting_ack: false, caught_up: false })
    }

    /// `SyncWsRpc.Pull`: the first chunk now, the next one at each Ack.
    pub(crate) fn pull(&mut self, host: &mut dyn Host, conn: u64, id: &str, payload: Option<&RawValue>) {
        if let Err(error) = self.start_pull(host, conn, id, payload) {
            host.send(conn, &error.exit(id));
        }
    }

    fn start_pull(
        &mut self,
        host: &mut dyn Host,
        conn: u64,
        id: &str,
        payload: Option<&RawValue>,
    ) -> Result<(), RequestError> {
        let (req, cursor) = self.parse_pull(host, Caller::Connection(conn), payload, "SyncWsRpc.Pull")?;
        let Some(state) = self.conns.get(&conn) else { return Ok(()) };
        if state.pulls.iter().any(|p| p.request_id == id) {
            return Err(RequestError::Invalid(format!("request id {id} is already running a pull")));
        }
        if state.pulls.len() >= MAX_PULLS_PER_CONNECTION {
            return Err(RequestError::TooManyPulls { limit: MAX_PULLS_PER_CONNECTION });
        }
        let mut stream = self.new_stream(host, id, cursor, req.live)?;
        host.log(
            LogLevel::Info,
            &format!(
                "pull store={:?} conn={conn} request={id:?} live={} cursor={cursor} events={}",
                self.store_id, req.live, stream.remaining
            ),
        );
        let frame = self.next_chunk(host, &mut stream)?;
        host.send(conn, &frame);
        if let Some(state) = self.conns.get_mut(&conn) {
            state.pulls.push(stream);
        }
        Ok(())
    }

    /// A non-streaming pull (HTTP transport): every chunk, then `Exit`, without Acks.
    pub(crate) fn http_pull(&mut self, host: &mut dyn Host, id: &str, payload: Option<&RawValue>) -> Vec<String> {
        let mut cursor = 0;
        let mut events = 0;
        let mut run = || -> Result<Vec<String>, RequestError> {
            (_, cursor) = self.parse_pull(host, Caller::HttpRequest, payload, "SyncHttpRpc.Pull")?;
            let mut stream = self.new_stream(host, id, cursor, false)?;
            events = stream.remaining;
            let mut frames = Vec::new();
            while !stream.caught_up {
                frames.push(self.next_chunk(host, &mut stream)?);
            }
            frames.push(encode::exit_stream_done(id));
            Ok(frames)
        };
        let outcome = run();
        let result = outcome.as_ref().map_or_else(|e| e.name(), |_| "ok");
        let line = format!(
            "pull store={:?} conn=http request={id:?} live=false cursor={cursor} events={events} result={result}",
            self.store_id
        );
        host.log(LogLevel::Info, &line);
        outcome.unwrap_or_else(|error| vec![error.exit(id)])
    }

    /// The stream's next catch-up chunk.
    fn next_chunk(&self, host: &mut dyn Host, stream: &mut PullStream) -> Result<String, RequestError> {
        let rows = if stream.remaining == 0 {
            Vec::new()
        } else {
            self.read_stored(host, stream.cursor, MAX_EVENTS_PER_CHUNK as u32)
                .map_err(|message| RequestError::Storage { message, stage: "select" })?
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

    pub(crate) fn ack(&mut self, host: &mut dyn Host, conn: u64, request_id: &str) {
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
                Err(error) => {
                    host.send(conn, &error.exit(request_id));
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

    pub(crate) fn interrupt(&mut self, host: &mut dyn Host, conn: u64, request_id: &str) {
        let Some(state) = self.conns.get_mut(&conn) else { return };
        if let Some(pos) = state.pulls.iter().position(|p| p.request_id == request_id) {
            state.pulls.swap_remove(pos);
            host.send(conn, &encode::exit_interrupted(request_id));
        }
    }
}
