//! Server → client messages of the simple JSON protocol (`simple.rs`).

use crate::encode::json_str;
use crate::host::EventRow;

/// `{"type":"error","code":…,"message":…}`.
pub fn error_message(code: &str, message: &str) -> String {
    format!(r#"{{"type":"error","code":{},"message":{}}}"#, json_str(code), json_str(message))
}

fn push_event(out: &mut String, row: &EventRow) {
    let id = row.event_id.clone().unwrap_or_else(|| format!("seq-{}", row.seq_num));
    out.push_str(&format!(
        r#"{{"id":{},"seqNum":{},"type":{},"data":{},"timestamp":{},"clientId":{}}}"#,
        json_str(&id),
        row.seq_num,
        json_str(&row.name),
        row.args.as_deref().unwrap_or("null"),
        json_str(&row.created_at),
        json_str(&row.client_id)
    ));
}

/// `{"type":"events","events":[…],"timestamp":…}` sent at `now`; `extra` adds fields
/// (e.g. `,"hasMore":true`).
pub fn events_message(rows: &[EventRow], now: &str, extra: &str) -> String {
    let mut events = String::new();
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            events.push(',');
        }
        push_event(&mut events, row);
    }
    format!(r#"{{"type":"events","events":[{events}],"timestamp":{}{extra}}}"#, json_str(now))
}

/// `{"type":"ack","ids":[…],"seqNums":[…]}`.
pub fn ack_message(ids: &[String], seq_nums: &[i64]) -> String {
    let ids_json = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    let seqs_json = serde_json::to_string(seq_nums).unwrap_or_else(|_| "[]".into());
    format!(r#"{{"type":"ack","ids":{ids_json},"seqNums":{seqs_json}}}"#)
}
