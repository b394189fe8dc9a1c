//! Decoding of client frames (Effect RPC over JSON, `RpcSerialization.layerJson`).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// One decoded client → server message.
#[derive(Debug)]
pub enum ClientMsg<'a> {
    Request { id: String, tag: String, payload: Option<&'a RawValue> },
    Ack { request_id: String },
    Interrupt { request_id: String },
    Ping,
    Eof,
}

#[derive(Deserialize)]
struct RawMsg<'a> {
    #[serde(rename = "_tag")]
    msg_tag: Option<String>,
    id: Option<Value>,
    tag: Option<String>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
    #[serde(rename = "requestId")]
    request_id: Option<Value>,
}

/// Decode a text frame. The error is the text of the `Defect` to answer with.
pub fn decode_client_msg(text: &str) -> Result<ClientMsg<'_>, String> {
    let raw: RawMsg<'_> = serde_json::from_str(text).map_err(|e| format!("Invalid message: {e}"))?;
    match raw.msg_tag.as_deref() {
        Some("Request") => {
            let id = match raw.id {
                Some(Value::String(s)) => s,
                Some(other) => return Err(format!("Invalid request id: {other}")),
                None => return Err("Invalid request id: undefined".to_string()),
            };
            let tag = raw.tag.unwrap_or_else(|| "undefined".to_string());
            Ok(ClientMsg::Request { id, tag, payload: raw.payload })
        }
        Some("Ack") => Ok(ClientMsg::Ack { request_id: request_id(raw.request_id)? }),
        Some("Interrupt") => Ok(ClientMsg::Interrupt { request_id: request_id(raw.request_id)? }),
        Some("Ping") => Ok(ClientMsg::Ping),
        Some("Eof") => Ok(ClientMsg::Eof),
        Some(other) => Err(format!("Unknown message tag: {other}")),
        None => Err("Unknown message tag: undefined".to_string()),
    }
}

fn request_id(v: Option<Value>) -> Result<String, String> {
    match v {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("Invalid request id: {other}")),
        None => Err("Invalid request id: undefined".to_string()),
    }
}

/// `Option<T>` as Effect Schema encodes it: `{"_tag":"None"}` / `{"_tag":"Some","value":…}`.
#[derive(Debug, Deserialize)]
#[serde(tag = "_tag")]
pub enum EffectOption<T> {
    None,
    Some { value: T },
}

impl<T> EffectOption<T> {
    pub fn into_option(self) -> Option<T> {
        match self {
            EffectOption::None => None,
            EffectOption::Some { value } => Some(value),
        }
    }
}

/// `LiveStoreEvent.Global.Encoded`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireEvent<'a> {
    pub name: String,
    #[serde(default, borrow)]
    pub args: Option<&'a RawValue>,
    pub seq_num: i64,
    pub parent_seq_num: i64,
    pub client_id: String,
    pub session_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushPayload<'a> {
    pub store_id: String,
    #[serde(borrow)]
    pub batch: Vec<WireEvent<'a>>,
    pub backend_id: EffectOption<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    pub backend_id: String,
    pub event_sequence_number: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullPayload {
    pub store_id: String,
    #[serde(default)]
    pub live: bool,
    pub cursor: EffectOption<Cursor>,
}

/// Parse a request payload; the error is a schema-violation message for an `Exit` `Die`.
pub fn parse_payload<'a, T: Deserialize<'a>>(payload: Option<&'a RawValue>, what: &str) -> Result<T, String> {
    let raw = payload.ok_or_else(|| format!("{what}: missing payload"))?;
    serde_json::from_str(raw.get()).map_err(|e| format!("{what}: invalid payload: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_message_kind() {
        match decode_client_msg(r#"{"_tag":"Request","id":"0","tag":"SyncWsRpc.Push","payload":{"a":1},"headers":[]}"#)
        {
            Ok(ClientMsg::Request { id, tag, payload }) => {
                assert_eq!(id, "0");
                assert_eq!(tag, "SyncWsRpc.Push");
                assert_eq!(payload.map(|p| p.get()), Some(r#"{"a":1}"#));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            matches!(decode_client_msg(r#"{"_tag":"Ack","requestId":"1"}"#), Ok(ClientMsg::Ack { request_id }) if request_id == "1")
        );
        assert!(matches!(
            decode_client_msg(r#"{"_tag":"Interrupt","requestId":"8"}"#),
            Ok(ClientMsg::Interrupt { .. })
        ));
        assert!(matches!(decode_client_msg(r#"{"_tag":"Ping"}"#), Ok(ClientMsg::Ping)));
        assert!(matches!(decode_client_msg(r#"{"_tag":"Eof"}"#), Ok(ClientMsg::Eof)));
    }

    #[test]
    fn rejects_numeric_ids_unknown_tags_and_bad_json() {
        assert_eq!(
            decode_client_msg(r#"{"_tag":"Request","id":902,"tag":"SyncWsRpc.Pull","payload":{}}"#).unwrap_err(),
            "Invalid request id: 902"
        );
        assert!(decode_client_msg(r#"{"_tag":"Nope"}"#).unwrap_err().contains("Unknown message tag: Nope"));
        assert!(decode_client_msg("{not json").unwrap_err().starts_with("Invalid message"));
        assert!(decode_client_msg("[1,2]").is_err());
    }

    #[test]
    fn parses_push_and_pull_payloads() {
        let raw: &RawValue = serde_json::from_str(
            r#"{"storeId":"s","batch":[{"name":"n","args":{"x":[1,2]},"seqNum":1,"parentSeqNum":0,"clientId":"c","sessionId":"s"}],"backendId":{"_tag":"Some","value":"b"}}"#,
        )
        .unwrap();
        let push: PushPayload<'_> = parse_payload(Some(raw), "push").unwrap();
        assert_eq!(push.batch[0].args.map(|a| a.get()), Some(r#"{"x":[1,2]}"#));
        assert_eq!(push.backend_id.into_option().as_deref(), Some("b"));
        let raw: &RawValue = serde_json::from_str(r#"{"storeId":"s","live":true,"cursor":{"_tag":"None"}}"#).unwrap();
        let pull: PullPayload = parse_payload(Some(raw), "pull").unwrap();
        assert!(pull.live && pull.cursor.into_option().is_none());
        let raw: &RawValue = serde_json::from_str(r#"{"storeId":"s","batch":[{"name":"n","seqNum":1.5}]}"#).unwrap();
        assert!(parse_payload::<PushPayload<'_>>(Some(raw), "push").is_err());
    }
}
