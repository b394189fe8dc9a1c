//! Encoding of server → client frames, byte-compatible with `@livestore/sync-cf` 0.4.0.

use crate::host::EventRow;
use std::fmt::Write;

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

pub fn pong() -> String {
    r#"{"_tag":"Pong"}"#.to_string()
}

pub fn defect(message: &str) -> String {
    format!(r#"{{"_tag":"Defect","defect":{}}}"#, json_str(message))
}

/// Push ack: `Exit Success` with the empty `PushAck` value.
pub fn exit_push_ack(request_id: &str) -> String {
    format!(r#"{{"_tag":"Exit","requestId":{},"exit":{{"_tag":"Success","value":{{}}}}}}"#, json_str(request_id))
}

/// `Exit Success` with a value (e.g. the HTTP Ping's `SyncMessage.Pong`).
pub fn exit_success_value(request_id: &str, value: &str) -> String {
    format!(r#"{{"_tag":"Exit","requestId":{},"exit":{{"_tag":"Success","value":{value}}}}}"#, json_str(request_id))
}

/// End of a finite stream: `Exit Success` without a value.
pub fn exit_stream_done(request_id: &str) -> String {
    format!(r#"{{"_tag":"Exit","requestId":{},"exit":{{"_tag":"Success"}}}}"#, json_str(request_id))
}

/// A typed failure (`Cause.Fail`); `error` is the encoded error object.
pub fn exit_fail(request_id: &str, error: &str) -> String {
    format!(
        r#"{{"_tag":"Exit","requestId":{},"exit":{{"_tag":"Failure","cause":{{"_tag":"Fail","error":{}}}}}}}"#,
        json_str(request_id),
        error
    )
}

/// A defect of one request, e.g. a payload that violates the schema (`Cause.Die`).
pub fn exit_die(request_id: &str, message: &str) -> String {
    format!(
        r#"{{"_tag":"Exit","requestId":{},"exit":{{"_tag":"Failure","cause":{{"_tag":"Die","defect":{}}}}}}}"#,
        json_str(request_id),
        json_str(message)
    )
}

/// The answer to an `Interrupt` of a running stream.
pub fn exit_interrupted(request_id: &str) -> String {
    format!(
        r#"{{"_tag":"Exit","requestId":{},"exit":{{"_tag":"Failure","cause":{{"_tag":"Interrupt","fiberId":{{"_tag":"Runtime","id":-499,"startTimeMillis":0}}}}}}}}"#,
        json_str(request_id)
    )
}

pub fn server_ahead_error(minimum_expected: i64, provided: i64) -> String {
    format!(r#"{{"minimumExpectedNum":{minimum_expected},"providedNum":{provided},"_tag":"ServerAheadError"}}"#)
}

pub fn backend_id_mismatch_error(expected: &str, received: &str) -> String {
    format!(
        r#"{{"expected":{},"received":{},"_tag":"BackendIdMismatchError"}}"#,
        json_str(expected),
        json_str(received)
    )
}

/// `UnknownError` with an `Error`-like cause and a payload naming the stage that failed.
pub fn unknown_error(cause_name: &str, message: &str, stage: &str) -> String {
    format!(
        r#"{{"cause":{{"name":{},"message":{}}},"payload":{{"stage":{}}},"_tag":"UnknownError"}}"#,
        json_str(cause_name),
        json_str(message),
        json_str(stage)
    )
}

/// One pull-response item: `{"eventEncoded":…,"metadata":Some(SyncMetadata)}`.
pub fn push_item(out: &mut String, row: &EventRow) {
    out.push_str(r#"{"eventEncoded":{"name":"#);
    out.push_str(&json_str(&row.name));
    out.push_str(r#","args":"#);
    out.push_str(row.args.as_deref().unwrap_or("null"));
    let _ = write!(out, r#","seqNum":{},"parentSeqNum":{},"clientId":"#, row.seq_num, row.parent_seq_num);
    out.push_str(&json_str(&row.client_id));
    out.push_str(r#","sessionId":"#);
    out.push_str(&json_str(&row.session_id));
    out.push_str(r#"},"metadata":{"_tag":"Some","value":{"_tag":"SyncMessage.SyncMetadata","createdAt":"#);
    out.push_str(&json_str(&row.created_at));
    out.push_str("}}}");
}

/// Page info of a pull chunk.
pub fn page_info(remaining: u64) -> String {
    if remaining == 0 {
        r#"{"_tag":"NoMore"}"#.to_string()
    } else {
        format!(r#"{{"_tag":"MoreKnown","remaining":{remaining}}}"#)
    }
}

/// A stream chunk carrying one `PullResponse`; `items` is the already-encoded batch array body.
pub fn pull_chunk(request_id: &str, items: &str, remaining: u64, backend_id: &str) -> String {
    format!(
        r#"{{"_tag":"Chunk","requestId":{},"values":[{{"batch":[{}],"pageInfo":{},"backendId":{}}}]}}"#,
        json_str(request_id),
        items,
        page_info(remaining),
        json_str(backend_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_match_the_reference_captures() {
        assert_eq!(exit_push_ack("0"), r#"{"_tag":"Exit","requestId":"0","exit":{"_tag":"Success","value":{}}}"#);
        assert_eq!(exit_stream_done("1"), r#"{"_tag":"Exit","requestId":"1","exit":{"_tag":"Success"}}"#);
        assert_eq!(
            exit_fail("2", &server_ahead_error(3, 1)),
            r#"{"_tag":"Exit","requestId":"2","exit":{"_tag":"Failure","cause":{"_tag":"Fail","error":{"minimumExpectedNum":3,"providedNum":1,"_tag":"ServerAheadError"}}}}"#
        );
        assert_eq!(
            backend_id_mismatch_error("a", "b"),
            r#"{"expected":"a","received":"b","_tag":"BackendIdMismatchError"}"#
        );
        let row = EventRow {
            seq_num: 1,
            parent_seq_num: 0,
            name: "todoCreated-v1".into(),
            args: Some(r#"{"id":"todo-1","text":"first"}"#.into()),
            created_at: "2026-11-26T18:53:10.284Z".into(),
            client_id: "client-A".into(),
            session_id: "client-A-session".into(),
            event_id: None,
        };
        let mut items = String::new();
        push_item(&mut items, &row);
        assert_eq!(
            pull_chunk("1", &items, 0, "apMVP9ZLvCNHYKY2F4T6A"),
            r#"{"_tag":"Chunk","requestId":"1","values":[{"batch":[{"eventEncoded":{"name":"todoCreated-v1","args":{"id":"todo-1","text":"first"},"seqNum":1,"parentSeqNum":0,"clientId":"client-A","sessionId":"client-A-session"},"metadata":{"_tag":"Some","value":{"_tag":"SyncMessage.SyncMetadata","createdAt":"2026-11-26T18:53:10.284Z"}}}],"pageInfo":{"_tag":"NoMore"},"backendId":"apMVP9ZLvCNHYKY2F4T6A"}]}"#
        );
        assert_eq!(page_info(150), r#"{"_tag":"MoreKnown","remaining":150}"#);
    }
}
