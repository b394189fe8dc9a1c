//! The simple protocol lets a client send its token in its first message instead of the URL.
//! Such a socket waits here, outside any store: nothing (no store, no component instance, no
//! row) exists for it until its `auth` message carries the right token, it has
//! `--auth-timeout-secs` to send it, and at most `--max-unauthenticated` sockets wait at once.
//! The replies are the simple protocol's own (`auth_ok`, `error` with `unauthorized`).

use super::socket::Socket;
use crate::auth::token_matches;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Messages a socket may send before it authenticates.
const MAX_MESSAGES_BEFORE_AUTH: usize = 16;

fn error(code: &str, message: &str) -> Message {
    Message::text(json!({ "type": "error", "code": code, "message": message }).to_string())
}

async fn refuse(ws: &mut Socket, reason: String) {
    tracing::info!(reason = reason.as_str(), "closing an unauthenticated simple-protocol socket");
    let close = CloseFrame { code: CloseCode::Policy, reason: reason.into() };
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.send(Message::Close(Some(close)))).await;
}

/// Wait for a valid `auth` message; `true` once the socket is authenticated (and told so),
/// `false` when it was closed.
pub async fn authenticate(ws: &mut Socket, expected: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut seen = 0;
    loop {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => {
                refuse(ws, format!("authenticate within {} s: {{\"type\":\"auth\",\"token\":…}}", timeout.as_secs()))
                    .await;
                return false;
            }
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return false,
            Ok(Some(Ok(Message::Text(t)))) => t.as_str().to_owned(),
            Ok(Some(Ok(Message::Binary(b)))) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Some(Ok(_))) => continue,
        };
        tracing::debug!(frame = %crate::redact::redact_frame(&msg), "frame in (not authenticated yet)");
        seen += 1;
        if seen > MAX_MESSAGES_BEFORE_AUTH {
            refuse(ws, format!("{MAX_MESSAGES_BEFORE_AUTH} messages without authenticating")).await;
            return false;
        }
        let reply = match serde_json::from_str::<Value>(&msg) {
            Err(e) => error("invalid_json", &format!("not a JSON object: {e}")),
            Ok(v) if v["type"] != "auth" => {
                error("unauthorized", "authenticate first: {\"type\":\"auth\",\"token\":…}")
            }
            Ok(v) => match v["token"].as_str() {
                None => error("invalid_message", "auth needs a string \"token\""),
                Some(token) if token_matches(Some(token), expected) => {
                    return ws.send(Message::text(r#"{"type":"auth_ok"}"#)).await.is_ok();
                }
                Some(_) => {
                    metrics::counter!(crate::telemetry::CONNECTIONS_REFUSED, "reason" => "auth").increment(1);
                    let _ = ws.send(error("unauthorized", "invalid token")).await;
                    refuse(ws, "unauthorized".into()).await;
                    return false;
                }
            },
        };
        if ws.send(reply).await.is_err() {
            return false;
        }
    }
}
