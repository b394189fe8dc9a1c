//! The sync query of the LiveStore transports: `?storeId=…&payload=…&transport=ws|http`.

use crate::store_id::{validate_store_id, StoreIdError};
use percent_encoding::percent_decode_str;
use serde_json::Value;
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Ws,
    Http,
}

#[derive(Debug, PartialEq)]
pub struct SyncParams {
    /// `Err` when the percent-decoded bytes are not UTF-8 (never replaced lossily: two
    /// different ids must not become one).
    pub store_id: Option<Result<String, StoreIdError>>,
    pub transport: Option<Transport>,
    /// A `transport` value other than `ws` or `http` (refused: it must not silently mean the
    /// simple protocol).
    pub unknown_transport: Option<String>,
    /// The decoded payload JSON; `Err` keeps the raw text of a payload that is not JSON.
    pub payload: Option<Result<Value, String>>,
    /// `clientId` (simple protocol).
    pub client_id: Option<String>,
    /// `token` (simple protocol).
    pub token: Option<String>,
}

impl SyncParams {
    pub fn parse(query: Option<&str>) -> SyncParams {
        let mut params = SyncParams {
            store_id: None,
            transport: None,
            unknown_transport: None,
            payload: None,
            client_id: None,
            token: None,
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = decode_component(raw);
            let value = decoded.clone().unwrap_or_else(|bytes| String::from_utf8_lossy(&bytes).into_owned());
            match decode_component(key).as_deref() {
                Ok("storeId") => params.store_id = Some(decoded.map_err(|_| StoreIdError::NotUtf8)),
                Ok("transport") => {
                    params.transport = match value.as_ref() {
                        "ws" => Some(Transport::Ws),
                        "http" => Some(Transport::Http),
                        _ => {
                            params.unknown_transport = Some(value.clone());
                            None
                        }
                    }
                }
                Ok("payload") => params.payload = Some(decode_payload(&value)),
                Ok("clientId") => params.client_id = Some(value),
                Ok("token") => params.token = Some(value),
                _ => {}
            }
        }
        params
    }

    /// The store id, checked against the store-id rule.
    pub fn store_id(&self) -> Result<&str, StoreIdError> {
        let id = self.store_id.as_ref().ok_or(StoreIdError::Missing)?.as_deref().map_err(Clone::clone)?;
        validate_store_id(id)?;
        Ok(id)
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

/// One `application/x-www-form-urlencoded` component (`+` is a space), as `URLSearchParams`
/// decodes it; `Err` holds the bytes when they are not UTF-8.
fn decode_component(raw: &str) -> Result<String, Vec<u8>> {
    let spaced = if raw.contains('+') { Cow::Owned(raw.replace('+', " ")) } else { Cow::Borrowed(raw) };
    let bytes: Cow<'_, [u8]> = percent_decode_str(&spaced).into();
    String::from_utf8(bytes.into_owned()).map_err(|e| e.into_bytes())
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

/// One query parameter, percent-decoded (`None` when absent or not UTF-8): the admin API's
/// `?after=…&limit=…`.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| decode_component(key).as_deref() == Ok(name))
        .and_then(|(_, value)| decode_component(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_double_and_single_encoded_payloads() {
        let p = SyncParams::parse(Some(
            "storeId=s1&payload=%257B%2522authToken%2522%253A%2522insecure-token-change-me%2522%257D&transport=ws",
        ));
        assert_eq!(p.store_id(), Ok("s1"));
        assert_eq!(p.transport, Some(Transport::Ws));
        assert_eq!(p.auth_token(), Some("insecure-token-change-me"));
        let p = SyncParams::parse(Some("storeId=s1&payload=%7B%22authToken%22%3A%22t%22%7D&transport=ws"));
        assert_eq!(p.auth_token(), Some("t"));
        let p = SyncParams::parse(Some("storeId=s1&payload=hello&transport=sse"));
        assert_eq!(p.transport, None);
        assert_eq!(p.payload, Some(Err("hello".into())));
        assert_eq!(SyncParams::parse(None).store_id(), Err(StoreIdError::Missing));
    }

    #[test]
    fn store_ids_decode_byte_exactly() {
        let id = |q: &str| SyncParams::parse(Some(q)).store_id().map(str::to_string);
        assert_eq!(id("storeId=a+b%20(c)%3A%2F%40%25&transport=ws"), Ok("a b (c):/@%".to_string()));
        assert_eq!(id("storeId=caf%C3%A9"), Ok("caf\u{e9}".to_string()));
        assert_eq!(id("storeId=cafe%CC%81"), Ok("cafe\u{301}".to_string()));
        assert_eq!(id("storeId=%F0%9F%98%80&storeId=last"), Ok("last".to_string()));
        // Lossy decoding would turn both into U+FFFD and merge two stores.
        assert_eq!(id("storeId=%FF"), Err(StoreIdError::NotUtf8));
        assert_eq!(id("storeId=%C3"), Err(StoreIdError::NotUtf8));
        assert_eq!(id("storeId="), Err(StoreIdError::Empty));
        assert_eq!(id("transport=ws"), Err(StoreIdError::Missing));
        let long = format!("storeId={}", "a".repeat(1025));
        assert_eq!(id(&long), Err(StoreIdError::TooLong { bytes: 1025 }));
    }

    #[test]
    fn one_query_parameter_is_found_and_decoded() {
        assert_eq!(query_param(Some("a=1&after=5&x=%C3%A9+b"), "after").as_deref(), Some("5"));
        assert_eq!(query_param(Some("a=1&after=5&x=%C3%A9+b"), "x").as_deref(), Some("é b"));
        assert_eq!(query_param(Some("flag&a=1"), "flag").as_deref(), Some(""));
        assert_eq!(query_param(Some("a=%FF"), "a"), None, "not UTF-8");
        assert_eq!(query_param(Some("a=1"), "b"), None);
        assert_eq!(query_param(None, "a"), None);
    }
}
