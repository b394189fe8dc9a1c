//! The simple JSON protocol for clients that are not LiveStore (scripts, devices):
//! `auth`, `push` (server-sequenced, idempotent by event id), `pull` (`since` a seqNum or an
//! ISO timestamp, `limit`), `ack`, and `events` broadcasts. Same store, same log.

use crate::core::{AdmitError, Core};
use crate::events::MAX_SEQ_NUM;
use crate::host::{Caller, EventRow, Host, LogLevel, PushRejection, Telemetry};
use crate::simple_wire::{ack_message, error_message, events_message};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;

pub const DEFAULT_PULL_LIMIT: u32 = 100;
pub const MAX_PULL_LIMIT: u32 = 1000;
pub const MAX_EVENTS_PER_PUSH: usize = 1000;
pub const MAX_EVENT_ID_LEN: usize = 256;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: Option<Value>,
}

#[derive(Deserialize)]
struct AuthMsg {
    token: String,
}

#[derive(Deserialize)]
struct PushMsg<'a> {
    #[serde(borrow)]
    events: Vec<SimpleEvent<'a>>,
}

#[derive(Deserialize)]
struct SimpleEvent<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PullMsg {
    #[serde(default)]
    since: Option<Value>,
    #[serde(default)]
    limit: Option<Value>,
}

impl Core {
    pub(crate) fn simple_frame(&mut self, host: &mut dyn Host, conn: u64, text: &str) {
        let kind = match serde_json::from_str::<Envelope>(text) {
            Ok(Envelope { kind: Some(Value::String(k)) }) => k,
            Ok(_) => return host.send(conn, &error_message("invalid_message", "a message needs a string \"type\"")),
            Err(e) => return host.send(conn, &error_message("invalid_json", &format!("not a JSON object: {e}"))),
        };
        let authenticated = self.conns.get(&conn).is_some_and(|c| c.authenticated);
        if kind == "auth" {
            return self.simple_auth(host, conn, text);
        }
        if !authenticated {
            return host
                .send(conn, &error_message("unauthorized", "authenticate first: {\"type\":\"auth\",\"token\":…}"));
        }
        match kind.as_str() {
            "push" => self.simple_push(host, conn, text),
            "pull" => self.simple_pull(host, conn, text),
            "ack" => {}
            "ping" => host.send(conn, r#"{"type":"pong"}"#),
            other => host.send(conn, &error_message("unknown_type", &format!("unknown message type {other:?}"))),
        }
    }

    fn simple_auth(&mut self, host: &mut dyn Host, conn: u64, text: &str) {
        let Ok(AuthMsg { token }) = serde_json::from_str::<AuthMsg>(text) else {
            return host.send(conn, &error_message("invalid_message", "auth needs a string \"token\""));
        };
        if host.check_token(&token) {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.authenticated = true;
            }
            host.send(conn, r#"{"type":"auth_ok"}"#);
        } else {
            host.send(conn, &error_message("unauthorized", "invalid token"));
            host.close(conn, 1008, "unauthorized");
        }
    }

    fn simple_push(&mut self, host: &mut dyn Host, conn: u64, text: &str) {
        let (reply, result, events) = self.simple_push_reply(host, conn, text);
        host.send(conn, &reply);
        let client = self.conns.get(&conn).map_or("", |c| c.client_id.as_str());
        // Debug formatting quotes and escapes what clients chose (newlines cannot forge lines).
        let line = format!(
            "simple push store={:?} conn={conn} client={client:?} events={events} head={} result={result}",
            self.store_id, self.state.head
        );
        host.log(if result == "ok" { LogLevel::Info } else { LogLevel::Warn }, &line);
    }

    /// A push's reply, its outcome for the log (`ok` or the error code) and its event count.
    fn simple_push_reply(&mut self, host: &mut dyn Host, conn: u64, text: &str) -> (String, &'static str, usize) {
        let started = host.monotonic_micros();
        let mut events = 0;
        let msg: PushMsg<'_> = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                host.record(Telemetry::PushRejected(PushRejection::InvalidPayload));
                return (error_message("invalid_message", &format!("push: {e}")), "invalid_message", events);
            }
        };
        events = msg.events.len();
        let limit = (self.settings.max_push_events as usize).min(MAX_EVENTS_PER_PUSH);
        if msg.events.is_empty() || msg.events.len() > limit {
            host.record(Telemetry::PushRejected(PushRejection::InvalidPayload));
            let m = format!("push needs 1 to {limit} events, got {}", msg.events.len());
            return (error_message("invalid_message", &m), "invalid_message", events);
        }
        if let Some(bad) =
            msg.events.iter().find(|e| e.id.is_empty() || e.id.len() > MAX_EVENT_ID_LEN || e.kind.is_empty())
        {
            host.record(Telemetry::PushRejected(PushRejection::InvalidPayload));
            let m = format!("event {:?}: id must be 1 to {MAX_EVENT_ID_LEN} bytes and type non-empty", bad.id);
            return (error_message("invalid_message", &m), "invalid_message", events);
        }
        let ids: Vec<String> = msg.events.iter().map(|e| e.id.clone()).collect();
        let known = match self.known_ids(host, &ids) {
            Ok(k) => k,
            Err(SimpleError { code, message }) => {
                if code == "invalid_message" {
                    host.record(Telemetry::PushRejected(PushRejection::InvalidPayload));
                }
                return (error_message(code, &message), code, events);
            }
        };
        // Sequence new ids at the head; repeated ids (stored or earlier in this batch) keep theirs.
        let client_id = self.conns.get(&conn).map(|c| c.client_id.clone()).unwrap_or_default();
        let created_at = crate::clock::now_iso(host);
        let mut assigned: HashMap<&str, i64> = HashMap::new();
        let mut rows = Vec::new();
        let mut seq_nums = Vec::with_capacity(ids.len());
        let mut head = self.state.head;
        for (ev, stored) in msg.events.iter().zip(&known) {
            let seq = match stored.or_else(|| assigned.get(ev.id.as_str()).copied()) {
                Some(seq) => seq,
                None => {
                    let Some(seq) = head.checked_add(1).filter(|s| *s <= MAX_SEQ_NUM) else {
                        host.record(Telemetry::PushRejected(PushRejection::InvalidBatch));
                        let m = format!("the store is full: seqNum {head} is the largest a client can hold");
                        return (error_message("store_full", &m), "store_full", events);
                    };
                    rows.push(EventRow {
                        seq_num: seq,
                        parent_seq_num: head,
                        name: ev.kind.clone(),
                        args: ev.data.map(|d| d.get().to_string()),
                        created_at: created_at.clone(),
                        client_id: client_id.clone(),
                        session_id: format!("{client_id}-simple"),
                        event_id: Some(ev.id.clone()),
                    });
                    assigned.insert(ev.id.as_str(), seq);
                    head = seq;
                    seq
                }
            };
            seq_nums.push(seq);
        }
        if !rows.is_empty() {
            match self.admit(host, &rows, Caller::Connection(conn), Some(conn), started) {
                Ok(()) => {}
                Err(AdmitError::Hook(m)) => return (error_message("rejected", &m), "rejected", events),
                Err(AdmitError::HeadMoved(head)) => {
                    let m = format!("the store moved on to seqNum {head} meanwhile; push again");
                    return (error_message("conflict", &m), "conflict", events);
                }
                Err(AdmitError::Storage(e)) => return (error_message("storage_error", &e), "storage_error", events),
            }
        }
        (ack_message(&ids, &seq_nums), "ok", events)
    }

    /// The stored seqNum of each id, if any. Events pushed without an id are reported as
    /// `seq-<seqNum>`; such an id names that event, and naming one that does not exist is
    /// refused (storing it would give two events the same id once that seqNum is written).
    fn known_ids(&self, host: &mut dyn Host, ids: &[String]) -> Result<Vec<Option<i64>>, SimpleError> {
        let storage = |message: String| SimpleError { code: "storage_error", message };
        let mut known = host.find_event_ids(&self.store_id, ids).map_err(storage)?;
        for (id, known) in ids.iter().zip(known.iter_mut()) {
            let Some(seq) = known.is_none().then(|| reported_seq_num(id)).flatten() else { continue };
            let row = host.read_after(&self.store_id, seq - 1, 1).map_err(storage)?;
            match row.first() {
                Some(row) if row.seq_num == seq && row.event_id.is_none() => *known = Some(seq),
                _ => {
                    return Err(SimpleError {
                        code: "invalid_message",
                        message: format!(
                            "event id {id:?} is reserved: ids of the form seq-<n> name events pushed without an \
                             id, and this store has no such event {seq}"
                        ),
                    })
                }
            }
        }
        Ok(known)
    }

    fn simple_pull(&mut self, host: &mut dyn Host, conn: u64, text: &str) {
        let (reply, result, events) = self.simple_pull_reply(host, conn, text);
        host.send(conn, &reply);
        let line = format!("simple pull store={:?} conn={conn} events={events} result={result}", self.store_id);
        host.log(if result == "ok" { LogLevel::Info } else { LogLevel::Warn }, &line);
    }

    /// A pull's reply, its outcome for the log (`ok` or the error code) and its event count.
    fn simple_pull_reply(&mut self, host: &mut dyn Host, conn: u64, text: &str) -> (String, &'static str, usize) {
        let msg: PullMsg = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => return (error_message("invalid_message", &format!("pull: {e}")), "invalid_message", 0),
        };
        let limit = match msg.limit {
            None | Some(Value::Null) => DEFAULT_PULL_LIMIT,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|l| (1..=u64::from(MAX_PULL_LIMIT)).contains(&l)) => {
                n.as_u64().unwrap_or(1) as u32
            }
            Some(other) => {
                let m = format!("limit must be an integer from 1 to {MAX_PULL_LIMIT}, got {other}");
                return (error_message("invalid_message", &m), "invalid_message", 0);
            }
        };
        let cursor = match msg.since {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) if n.as_i64().is_some_and(|s| s >= 0) => n.as_i64().unwrap_or(0),
            Some(Value::String(ts)) if normalize_timestamp(&ts).is_some() => {
                let ts = normalize_timestamp(&ts).unwrap_or_default();
                match host.seq_at_time(&self.store_id, &ts) {
                    Ok(seq) => seq,
                    Err(e) => return (error_message("storage_error", &e), "storage_error", 0),
                }
            }
            Some(other) => {
                let m = format!("since must be a seqNum (integer ≥ 0) or an ISO-8601 timestamp, got {other}");
                return (error_message("invalid_message", &m), "invalid_message", 0);
            }
        };
        if self.hooks.on_pull {
            if let Err(m) = host.on_pull_hook(Caller::Connection(conn), cursor, false) {
                return (error_message("rejected", &m), "rejected", 0);
            }
        }
        // One row more than asked tells whether more remain.
        let mut rows = match self.read_stored(host, cursor, limit + 1) {
            Ok(rows) => rows,
            Err(e) => return (error_message("storage_error", &e), "storage_error", 0),
        };
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let now = crate::clock::now_iso(host);
        (events_message(&rows, &now, &format!(r#","hasMore":{has_more}"#)), "ok", rows.len())
    }
}

struct SimpleError {
    code: &'static str,
    message: String,
}

/// The seqNum in an id of the form the server reports for events pushed without one
/// (`seq-` and the number in canonical form).
fn reported_seq_num(id: &str) -> Option<i64> {
    let n = id.strip_prefix("seq-")?.parse::<i64>().ok().filter(|n| *n > 0)?;
    (id.len() == 4 + n.to_string().len()).then_some(n)
}

/// Any RFC 3339 timestamp, rewritten in the `createdAt` form (UTC, milliseconds) so that
/// stored timestamps compare correctly as text.
pub fn normalize_timestamp(s: &str) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_normalized_to_created_at_form() {
        assert_eq!(super::normalize_timestamp("2026-11-26T18:53:10Z").as_deref(), Some("2026-11-26T18:53:10.000Z"));
        assert_eq!(
            super::normalize_timestamp("2026-11-26T19:53:10.5+01:00").as_deref(),
            Some("2026-11-26T18:53:10.500Z")
        );
        assert_eq!(super::normalize_timestamp("yesterday"), None);
    }

    #[test]
    fn only_canonical_seq_ids_name_stored_events() {
        assert_eq!(super::reported_seq_num("seq-12"), Some(12));
        for other in ["seq-012", "seq-+1", "seq-0", "seq--1", "seq-", "seq-1a", "x-1", "seq-99999999999999999999"] {
            assert_eq!(super::reported_seq_num(other), None, "{other}");
        }
    }
}
