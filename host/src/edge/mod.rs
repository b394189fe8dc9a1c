//! The network edge: routing, admission, the HTTP transport, the WebSocket pump and the admin
//! API. It parses requests and moves frames between sockets and the store shards; it never
//! looks inside a sync frame.

mod admin;
mod admit;
mod auth_gate;
mod client_addr;
mod cors;
mod error;
mod http_rpc;
mod pending;
mod socket;
mod state;

pub(crate) use admin::Sessions as AdminSessions;
pub(crate) use client_addr::AddressSlots;
pub use error::EdgeError;
pub(crate) use pending::PendingConnections;
pub(crate) use state::EdgeState;
use state::{send, HttpResponse};

use crate::shard::ShardMsg;
use crate::sync_params::{SyncParams, Transport};
use crate::telemetry;
use admit::Entry;
use error::text;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const INFO_TEXT: &str = "Info: livestore-sync, a LiveStore sync backend (wire-compatible with @livestore/sync-cf). Connect with ?storeId=…&payload=…&transport=ws\n";

/// One HTTP request, from any connection.
pub(crate) async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    state: Arc<EdgeState>,
) -> Result<HttpResponse, std::convert::Infallible> {
    let cors = state.config.cors.then(|| cors::allow_origin(&req, &state.config.allowed_origins));
    let path = req.uri().path().to_string();
    let mut res = route(req, peer, state).await.unwrap_or_else(|e| {
        // Never the query string: it can carry a token.
        tracing::info!(%peer, path = path.as_str(), status = e.status().as_u16(), reason = e.message(), "refused a request");
        e.into_response()
    });
    if let Some(allow) = cors {
        allow.apply(res.headers_mut());
    }
    Ok(res)
}

async fn route(req: Request<Incoming>, peer: SocketAddr, state: Arc<EdgeState>) -> Result<HttpResponse, EdgeError> {
    if state.config.cors && req.method() == Method::OPTIONS {
        return Ok(cors::preflight(&req));
    }
    cors::check_origin(&req, &state.config.allowed_origins)?;
    let params = SyncParams::parse(req.uri().query());
    if let Some(unknown) = &params.unknown_transport {
        return Err(EdgeError::BadRequest(format!(
            "Unknown transport {unknown:?}: use transport=ws or transport=http (none for the simple protocol)"
        )));
    }
    let read = req.method() == Method::GET || req.method() == Method::HEAD;
    match (req.uri().path(), params.transport) {
        ("/health", None) if read => return health(&state).await,
        ("/metrics", None) if read => {
            let mut res = text(StatusCode::OK, telemetry::render());
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            return Ok(res);
        }
        ("/health" | "/metrics", None) => {
            return Err(EdgeError::MethodNotAllowed(format!("{} takes GET or HEAD", req.uri().path())))
        }
        (path, None) if path == "/admin" || path.starts_with("/admin/") => return admin::handle(req, state).await,
        _ => {}
    }
    match params.transport {
        Some(Transport::Ws) => {
            let admitted = admit::admit(&req, peer, &params, &state, Entry::LiveStoreWs).await?;
            socket::accept(req, admitted, state).await
        }
        Some(Transport::Http) if req.method() != Method::POST => {
            Err(EdgeError::MethodNotAllowed("the HTTP transport takes POST".into()))
        }
        Some(Transport::Http) => {
            let admitted = admit::admit(&req, peer, &params, &state, Entry::LiveStoreHttp).await?;
            http_rpc::handle(req, admitted, state).await
        }
        None if admit::is_websocket_upgrade(&req) && params.store_id.is_some() => {
            let admitted = admit::admit(&req, peer, &params, &state, Entry::Simple).await?;
            socket::accept(req, admitted, state).await
        }
        None if req.uri().path() == "/" && read => Ok(text(StatusCode::OK, INFO_TEXT)),
        None if req.uri().path() == "/" => Err(EdgeError::MethodNotAllowed("/ takes GET or HEAD".into())),
        None => Err(EdgeError::NotFound(
            "Not found: expected a sync request (?storeId=…&payload=…&transport=ws|http), /health or /metrics".into(),
        )),
    }
}

/// How long one storage probe answers `/health` for: a flood of health checks costs one write
/// a second, not one write each, on the shard that also serves pushes.
const HEALTH_PROBE_REUSE: Duration = Duration::from_secs(1);

async fn health(state: &EdgeState) -> Result<HttpResponse, EdgeError> {
    // Callers queue here while a probe runs and then share its answer.
    let mut last = state.health.lock().await;
    let fresh = last.as_ref().filter(|(at, _)| at.elapsed() < HEALTH_PROBE_REUSE).map(|(_, r)| r.clone());
    let result = match fresh {
        Some(result) => result,
        None => {
            let result = probe_storage(state).await;
            *last = Some((Instant::now(), result.clone()));
            result
        }
    };
    drop(last);
    result.map(|()| text(StatusCode::OK, "ok\n"))
}

/// A real write on a shard's connection (and its check that the database file is still the one
/// it opened).
async fn probe_storage(state: &EdgeState) -> Result<(), EdgeError> {
    metrics::counter!(telemetry::HEALTH_PROBES).increment(1);
    let Some(rx) = send(state.shards.any(), |reply| ShardMsg::Health { reply }) else {
        return Err(EdgeError::shutting_down());
    };
    match tokio::time::timeout(Duration::from_secs(5), rx).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(EdgeError::Unavailable(format!("storage is not writable: {e}"))),
        _ => Err(EdgeError::Unavailable("storage did not answer within 5 s".into())),
    }
}
