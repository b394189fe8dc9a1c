//! Admission: the one path every client entry point (LiveStore WebSocket, LiveStore HTTP, the
//! simple protocol) goes through before it reaches a store: store id, payload, token,
//! validate-payload hooks, forwarded headers.

use super::client_addr::client_ip;
use super::error::EdgeError;
use super::state::EdgeState;
use crate::auth::token_matches;
use crate::hooks::HookFn;
use crate::runtime::{OpenInfo, Protocol};
use crate::sync_params::SyncParams;
use crate::telemetry::CONNECTIONS_REFUSED;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONNECTION, SEC_WEBSOCKET_VERSION, UPGRADE};
use hyper::Request;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `?transport=ws`: a LiveStore WebSocket.
    LiveStoreWs,
    /// `?transport=http`: one LiveStore RPC per POST.
    LiveStoreHttp,
    /// A WebSocket without `transport`: the simple JSON protocol; the token may also arrive
    /// in the first message.
    Simple,
}

/// A request that may reach its store.
pub struct Admitted {
    pub store_id: String,
    pub info: OpenInfo,
    /// The client's address (`client_addr.rs`).
    pub client_ip: IpAddr,
}

fn invalid_token() -> EdgeError {
    metrics::counter!(CONNECTIONS_REFUSED, "reason" => "auth").increment(1);
    EdgeError::BadRequest("Invalid auth token: the payload's authToken does not match the server's token".into())
}

pub async fn admit(
    req: &Request<Incoming>,
    peer: SocketAddr,
    params: &SyncParams,
    state: &EdgeState,
    entry: Entry,
) -> Result<Admitted, EdgeError> {
    let config = &state.config;
    if entry != Entry::LiveStoreHttp && is_websocket_upgrade(req) {
        check_websocket_version(req)?;
    }
    let store_id = params.store_id().and_then(|id| match &config.store_id_pattern {
        Some(pattern) => pattern.check(id).map(|()| id),
        None => Ok(id),
    });
    let store_id = store_id.inspect_err(|_| {
        metrics::counter!(CONNECTIONS_REFUSED, "reason" => "store-id").increment(1);
    })?;
    if entry != Entry::Simple {
        if let Some(Err(raw)) = &params.payload {
            return Err(EdgeError::BadRequest(format!("payload is not URL-encoded JSON: {raw:?}")));
        }
    }
    if entry == Entry::LiveStoreWs && !is_websocket_upgrade(req) {
        return Err(EdgeError::UpgradeRequired("Expected Upgrade: websocket (transport=ws)".into()));
    }
    let authenticated = match (&config.auth_token, entry) {
        (None, _) => true,
        (Some(expected), Entry::Simple) => {
            let presented =
                params.token.clone().or_else(|| params.auth_token().map(str::to_string)).or_else(|| bearer_token(req));
            match presented {
                Some(token) if token_matches(Some(&token), expected) => true,
                Some(_) => return Err(invalid_token()),
                None => false,
            }
        }
        (Some(expected), _) => {
            if !token_matches(params.auth_token(), expected) {
                tracing::info!(store_id, "refused a connection: invalid auth token");
                return Err(invalid_token());
            }
            true
        }
    };
    let payload = params.payload_json();
    let headers = forwarded_headers(req, &config.forward_headers);
    validate_payload(state, store_id, &payload, &headers, req).await?;
    let protocol = if entry == Entry::Simple { Protocol::Simple } else { Protocol::Livestore };
    let info = OpenInfo { protocol, authenticated, client_id: params.client_id.clone(), payload, headers };
    let client_ip = client_ip(peer.ip(), req.headers(), &config.trusted_proxies);
    Ok(Admitted { store_id: store_id.to_string(), info, client_ip })
}

/// The validate-payload hooks at connect: a refusal is a 400 with the hook's message; a hook
/// that failed is a 500.
async fn validate_payload(
    state: &EdgeState,
    store_id: &str,
    payload: &Option<String>,
    forwarded: &[(String, String)],
    req: &Request<Incoming>,
) -> Result<(), EdgeError> {
    let Some(hooks) = state.hooks.clone().filter(|h| h.has(HookFn::ValidatePayload)) else {
        return Ok(());
    };
    // Hooks see the forwarded headers and Authorization (curl users send the token there).
    let mut headers = forwarded.to_vec();
    let payload = payload.clone();
    if let Some(auth) = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if !headers.iter().any(|(k, _)| k == "authorization") {
            headers.push(("authorization".to_string(), auth.to_string()));
        }
    }
    let store = store_id.to_string();
    let verdict =
        tokio::task::spawn_blocking(move || hooks.validate_payload(&store, payload.as_deref(), &headers)).await;
    match verdict {
        Ok(Ok(())) => Ok(()),
        Ok(Err(refusal)) => {
            let refusal = EdgeError::from(refusal);
            if let EdgeError::BadRequest(message) = &refusal {
                metrics::counter!(CONNECTIONS_REFUSED, "reason" => "hook").increment(1);
                tracing::info!(store_id, reason = message.as_str(), "a validate-payload hook refused the connection");
            }
            Err(refusal)
        }
        Err(e) => Err(EdgeError::Internal(format!("validate-payload hook: {e}"))),
    }
}

/// The configured headers of a request, lower-case names.
fn forwarded_headers(req: &Request<Incoming>, names: &[String]) -> Vec<(String, String)> {
    names
        .iter()
        .flat_map(|name| {
            req.headers()
                .get_all(name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|v| (name.clone(), v.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn bearer_token(req: &Request<Incoming>) -> Option<String> {
    let v = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    crate::auth::bearer_credentials(v).map(str::to_string)
}

/// RFC 6455 defines version 13 only; anything else gets 426 naming it.
fn check_websocket_version(req: &Request<Incoming>) -> Result<(), EdgeError> {
    match req.headers().get(SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) {
        Some(b"13") => Ok(()),
        Some(other) => Err(EdgeError::WebSocketVersion(format!(
            "Unsupported Sec-WebSocket-Version {:?}: this server speaks version 13",
            String::from_utf8_lossy(other)
        ))),
        None => Err(EdgeError::WebSocketVersion("Missing Sec-WebSocket-Version: this server speaks version 13".into())),
    }
}

pub fn is_websocket_upgrade(req: &Request<Incoming>) -> bool {
    let has = |name, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(token)))
    };
    has(UPGRADE, "websocket") && has(CONNECTION, "upgrade")
}
