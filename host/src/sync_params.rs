//! The sync query of the LiveStore transports: `?storeId=…&payload=…&transport=ws|http`.

use percent_encoding::percent_decode_str;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Ws,
    Http,
}

#[derive(Debug, PartialEq)]
pub struct SyncParams {
    pub store_id: Option<String>,
    pub transport: Option<Transport>,
    /// The decoded payload JSON; `Err` keeps the raw text of a payload that is not JSON.
    pub payload: Option<Result<Value, String>>,
    /// `clientId` (simple protocol).
    pub client_id: Option<String>,
    /// `token` (simple protocol).
    pub token: Option<String>,
}

impl SyncParams {
    pub fn parse(query: Option<&str>) -> SyncParams {
        let mut params = SyncParams { store_id: None, transport: None, payload: None, client_id: None, token: None };
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "storeId" => params.store_id = Some(value.into_owned()),
                "transport" => {
                    params.transport = match value.as_ref() {
                        "ws" => Some(Transport::Ws),
                        "http" => Some(Transport::Http),
                        _ => None,
                    }
                }
                "payload" => params.payload = Some(decode_payload(&value)),
                "clientId" => params.client_id = Some(value.into_owned()),
                "token" => params.token = Some(value.into_owned()),
                _ => {}
            }
        }
        params
    }

    /// The payload's `authToken`, if it is a string.
    pub fn auth_token(&self) -> Option<&str> {
        match &self.payload {
            Some(Ok(v)) => v.get("authToken").and_then(Value::as_str),
            _ => None,
        }
    }

    /// The payload as JSON text, for the component.
    pub fn payload_json(&self) -> Option<String> {
        match &self.payload {
            Some(Ok(v)) => Some(v.to_string()),
            _ => None,
        }
    }
}

/// The real client encodes the payload twice (`encodeURIComponent` then URL params); the
/// query parser removed one layer. Accept a once-encoded payload too.
fn decode_payload(once_decoded: &str) -> Result<Value, String> {
    if let Ok(twice) = percent_decode_str(once_decoded).decode_utf8() {
        if let Ok(v) = serde_json::from_str(&twice) {
            return Ok(v);
        }
    }
    serde_json::from_str(once_decoded).map_err(|_| once_decoded.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_double_and_single_encoded_payloads() {
        let p = SyncParams::parse(Some(
            "storeId=s1&payload=%257B%2522authToken%2522%253A%2522insecure-token-change-me%2522%257D&transport=ws",
        ));
        assert_eq!(p.store_id.as_deref(), Some("s1"));
        assert_eq!(p.transport, Some(Transport::Ws));
        assert_eq!(p.auth_token(), Some("insecure-token-change-me"));
        let p = SyncParams::parse(Some("storeId=s1&payload=%7B%22authToken%22%3A%22t%22%7D&transport=ws"));
        assert_eq!(p.auth_token(), Some("t"));
        let p = SyncParams::parse(Some("storeId=s1&payload=hello&transport=sse"));
        assert_eq!(p.transport, None);
        assert_eq!(p.payload, Some(Err("hello".into())));
        assert_eq!(SyncParams::parse(None).store_id, None);
    }
}
