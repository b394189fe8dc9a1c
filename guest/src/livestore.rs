//! The LiveStore protocol (`@livestore/sync-cf`'s WebSocket and HTTP RPCs): request dispatch
//! and pushes. Pulls stream through `pull.rs`.

use crate::core::{AdmitError, Core};
use crate::encode;
use crate::errors::RequestError;
use crate::events::{self, Rejection};
use crate::host::{Caller, Host, LogLevel, Telemetry};
use crate::wire::{self, ClientMsg, PushPayload};
use serde_json::value::RawValue;

/// What a push request carried, for its log line.
#[derive(Default)]
struct PushSummary {
    events: usize,
    client: Option<String>,
}

impl Core {
    pub(crate) fn livestore_frame(&mut self, host: &mut dyn Host, conn: u64, text: &str) {
        match wire::decode_client_msg(text) {
            Err(defect) => host.send(conn, &encode::defect(&defect)),
            Ok(ClientMsg::Ping) => host.send(conn, &encode::pong()),
            Ok(ClientMsg::Eof) => {}
            Ok(ClientMsg::Ack { request_id }) => self.ack(host, conn, &request_id),
            Ok(ClientMsg::Interrupt { request_id }) => self.interrupt(host, conn, &request_id),
            Ok(ClientMsg::Request { id, tag, payload }) => match tag.as_str() {
                "SyncWsRpc.Push" => {
                    let frame = self.logged_push(host, Caller::Connection(conn), &id, payload, "SyncWsRpc.Push");
                    host.send(conn, &frame);
                }
                "SyncWsRpc.Pull" => self.pull(host, conn, &id, payload),
                other => host.send(conn, &encode::defect(&format!("Unknown request tag: {other}"))),
            },
        }
    }

    /// One HTTP-transport request: the JSON array of every response message.
    pub(crate) fn livestore_http_request(&mut self, host: &mut dyn Host, body: &str) -> String {
        let frames = match wire::decode_client_msg(body) {
            Err(_) if body.trim_start().starts_with('[') => vec![encode::defect("Unknown request tag: undefined")],
            Err(defect) => vec![encode::defect(&defect)],
            Ok(ClientMsg::Request { id, tag, payload }) => match tag.as_str() {
                "SyncHttpRpc.Ping" => vec![encode::exit_success_value(&id, r#"{"_tag":"SyncMessage.Pong"}"#)],
                "SyncHttpRpc.Push" => {
                    vec![self.logged_push(host, Caller::HttpRequest, &id, payload, "SyncHttpRpc.Push")]
                }
                "SyncHttpRpc.Pull" => self.http_pull(host, &id, payload),
                other => vec![encode::defect(&format!("Unknown request tag: {other}"))],
            },
            Ok(_) => vec![encode::defect("the HTTP transport takes one Request per body")],
        };
        format!("[{}]", frames.join(","))
    }

    /// Run a push request, log it, and return its `Exit` frame.
    fn logged_push(
        &mut self,
        host: &mut dyn Host,
        caller: Caller,
        id: &str,
        payload: Option<&RawValue>,
        what: &str,
    ) -> String {
        let mut summary = PushSummary::default();
        let outcome = self.push(host, caller, payload, what, &mut summary);
        let (level, result) = match &outcome {
            Ok(()) => (LogLevel::Info, "ok".to_string()),
            Err(RequestError::Invalid(message)) => (LogLevel::Warn, format!("invalid: {message}")),
            Err(error) => (LogLevel::Info, error.name().to_string()),
        };
        let client = summary.client.as_deref().unwrap_or("-");
        // Debug formatting quotes and escapes what clients chose (newlines cannot forge lines).
        let line = format!(
            "push store={:?} conn={caller} request={id:?} client={client:?} events={} head={} result={result}",
            self.store_id, summary.events, self.state.head
        );
        host.log(level, &line);
        match outcome {
            Ok(()) => encode::exit_push_ack(id),
            Err(error) => error.exit(id),
        }
    }

    fn push(
        &mut self,
        host: &mut dyn Host,
        caller: Caller,
        payload: Option<&RawValue>,
        what: &str,
        summary: &mut PushSummary,
    ) -> Result<(), RequestError> {
        let started = host.monotonic_micros();
        let checked = self.check_push(host, payload, what, summary);
        let rows = match checked {
            Ok(Some(rows)) => rows,
            Ok(None) => return Ok(()),
            Err(error) => {
                host.record(Telemetry::PushRejected(error.push_rejection()));
                return Err(error);
            }
        };
        // `admit` records its own rejections (hook, head moved, storage).
        let provided = rows.first().map_or(0, |r| r.parent_seq_num);
        self.admit(host, &rows, caller, None, started).map_err(|e| match e {
            AdmitError::Hook(message) => RequestError::HookRejected { message, stage: "onPush" },
            AdmitError::HeadMoved(head) => RequestError::ServerAhead { head, provided },
            AdmitError::Storage(message) => RequestError::Storage { message, stage: "insert" },
        })
    }

    /// Decode and validate a push; the rows to admit, or `None` for an empty batch.
    fn check_push(
        &mut self,
        host: &mut dyn Host,
        payload: Option<&RawValue>,
        what: &str,
        summary: &mut PushSummary,
    ) -> Result<Option<Vec<crate::host::EventRow>>, RequestError> {
        let req: PushPayload<'_> = wire::parse_payload(payload, what).map_err(RequestError::Invalid)?;
        summary.events = req.batch.len();
        summary.client = req.batch.first().map(|e| e.client_id.clone());
        self.check_store_id(&req.store_id)?;
        if req.batch.is_empty() {
            return Ok(None);
        }
        let limit = self.settings.max_push_events as usize;
        if req.batch.len() > limit {
            return Err(RequestError::BatchTooLarge { size: req.batch.len(), limit });
        }
        if let Some(received) = req.backend_id.into_option() {
            if received != self.state.backend_id {
                return Err(RequestError::BackendIdMismatch { expected: self.state.backend_id.clone(), received });
            }
        }
        // A client that read further than this instance's head from storage (another node
        // committed; its notice is on the way) pushes above that head: catch up first, so the
        // push is judged against the stored head and live pulls get those events in order.
        if let Some(parent) = req.batch.first().map(|e| e.parent_seq_num).filter(|p| *p > self.state.head) {
            if let Err(message) = self.advance_to(host, parent) {
                host.log(LogLevel::Debug, &format!("catching up before a push above the head: {message}"));
            }
        }
        events::check_batch(self.state.head, &req.batch).map_err(|rejection| match rejection {
            Rejection::ServerAhead { head, provided } => RequestError::ServerAhead { head, provided },
            Rejection::BrokenChain { message, .. } => RequestError::InvalidBatch(message),
        })?;
        Ok(Some(events::to_rows(&req.batch, &crate::clock::now_iso(host))))
    }
}
