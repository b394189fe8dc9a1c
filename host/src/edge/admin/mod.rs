//! The admin API and the operator console, on only when an admin secret is configured (404
//! otherwise). `{id}` is one percent-encoded path segment.
//!
//! - Console: `GET /admin/` (HTML, CSS and JavaScript embedded in the binary), sign-in
//!   `POST /admin/session` (`{"secret":…}` → session cookie + CSRF token), `GET` /
//!   `DELETE /admin/session`.
//! - API (Bearer admin secret, or the console's session): `GET /admin/overview`,
//!   `GET /admin/stores`, `GET /admin/stores/{id}`, `…/{id}/events`, `…/{id}/connections`,
//!   `…/{id}/export`, `…/{id}/tail`, `POST …/{id}/reset`, `POST …/{id}/import`.
//! - On `POST /admin/stores/{id}`, the LiveStore admin messages `@livestore/sync-cf` defines
//!   (`SyncMessage.AdminInfoRequest`, `SyncMessage.AdminResetRoomRequest`, secret in
//!   `adminSecret`).

mod api;
mod console;
mod session;
mod stream;

pub use session::Sessions;

use super::error::EdgeError;
use super::state::{full, EdgeState, HttpResponse};
use crate::auth::token_matches;
use crate::shard::AdminAction;
use crate::store_id::{validate_store_id, StoreIdError};
use api::{ask_owner, json_response, json_text_response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, LOCATION, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::json;
use session::{authorize, Caller};
use std::sync::Arc;

/// The largest body a sign-in or LiveStore admin message may have.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

async fn json_body(req: Request<Incoming>) -> Result<serde_json::Value, EdgeError> {
    let body = Limited::new(req.into_body(), MAX_MESSAGE_BYTES)
        .collect()
        .await
        .map_err(|e| EdgeError::PayloadTooLarge(e.to_string()))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| EdgeError::BadRequest(format!("body is not JSON: {e}")))
}

/// The store id of a path segment: decoded (`/` in an id is `%2F`) and checked.
fn store_id(segment: &str) -> Result<Arc<str>, EdgeError> {
    let id = percent_decode_str(segment).decode_utf8().map_err(|_| StoreIdError::NotUtf8)?;
    validate_store_id(&id)?;
    Ok(id.into())
}

pub async fn handle(req: Request<Incoming>, state: Arc<EdgeState>) -> Result<HttpResponse, EdgeError> {
    let Some(secret) = state.config.admin_secret.clone() else {
        return Err(EdgeError::NotFound(
            "the admin API and console are disabled (set --admin-secret / ADMIN_SECRET)".into(),
        ));
    };
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let read = method == Method::GET || method == Method::HEAD;
    // The console and its sign-in need no session yet.
    match (&method, path.as_str()) {
        (_, "/admin") if read => {
            let mut res = Response::new(full(""));
            *res.status_mut() = StatusCode::PERMANENT_REDIRECT;
            res.headers_mut().insert(LOCATION, HeaderValue::from_static("/admin/"));
            return Ok(res);
        }
        (_, "/admin/") if read => return Ok(console::page()),
        (_, asset) if read && console::is_asset(asset) => return console::asset(asset),
        (&Method::POST, "/admin/session") => return sign_in(req, &state, &secret).await,
        (&Method::GET, "/admin/session") => {
            return match authorize(&req, &state, &secret, false)? {
                Caller::Session { csrf, .. } => Ok(json_response(&json!({ "csrf": csrf }))),
                Caller::Bearer => Ok(json_response(&json!({ "csrf": null }))),
            }
        }
        (&Method::DELETE, "/admin/session") => {
            if let Caller::Session { id, .. } = authorize(&req, &state, &secret, true)? {
                state.sessions.remove(&id);
            }
            let mut res = Response::new(full(""));
            *res.status_mut() = StatusCode::NO_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
                res.headers_mut().insert(SET_COOKIE, v);
            }
            return Ok(res);
        }
        _ => {}
    }
    let query = req.uri().query().map(str::to_string);
    let query = query.as_deref();
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    // The LiveStore admin messages carry their secret in the body.
    if let (&Method::POST, ["", "admin", "stores", id]) = (&method, parts.as_slice()) {
        let id = id.to_string();
        return livestore_message(req, &state, &secret, &id).await;
    }
    authorize(&req, &state, &secret, !read)?;
    match (&method, parts.as_slice()) {
        (m, ["", "admin", "overview"]) if m == Method::GET => Ok(api::overview(&state)),
        (m, ["", "admin", "stores"]) if m == Method::GET => api::list(&state, query).await,
        (m, ["", "admin", "stores", id]) if m == Method::GET => {
            Ok(json_text_response(ask_owner(&state, &store_id(id)?, AdminAction::Info).await?))
        }
        (m, ["", "admin", "stores", id, "events"]) if m == Method::GET => {
            api::events(&state, &store_id(id)?, query).await
        }
        (m, ["", "admin", "stores", id, "connections"]) if m == Method::GET => {
            // The owner answers 404 for a store that does not exist, not an empty list.
            Ok(json_text_response(ask_owner(&state, &store_id(id)?, AdminAction::Connections).await?))
        }
        (m, ["", "admin", "stores", id, "export"]) if m == Method::GET => {
            let id = store_id(id)?;
            stream::export(state, id).await
        }
        (m, ["", "admin", "stores", id, "tail"]) if m == Method::GET => {
            let id = store_id(id)?;
            stream::tail(state, id).await
        }
        (&Method::POST, ["", "admin", "stores", id, "import"]) => {
            let id = store_id(id)?;
            stream::import(req, state, id).await
        }
        (&Method::POST, ["", "admin", "stores", id, "reset"]) => {
            Ok(json_text_response(ask_owner(&state, &store_id(id)?, AdminAction::Reset).await?))
        }
        _ => Err(EdgeError::NotFound(format!(
            "unknown admin endpoint {method} {path}: GET /admin/overview, GET /admin/stores, GET /admin/stores/{{id}}[/events|/connections|/export|/tail], POST /admin/stores/{{id}}/reset|import"
        ))),
    }
}

/// `POST /admin/session` with `{"secret": "…"}`: a session cookie and the CSRF token the
/// console sends back on every change.
async fn sign_in(req: Request<Incoming>, state: &EdgeState, secret: &str) -> Result<HttpResponse, EdgeError> {
    let body = json_body(req).await?;
    if !token_matches(body["secret"].as_str(), secret) {
        tracing::info!("refused an admin sign-in: wrong secret");
        return Err(EdgeError::Unauthorized("wrong admin secret".into()));
    }
    let (id, csrf) = state.sessions.create();
    let mut res = json_response(&json!({ "csrf": csrf }));
    let cookie = HeaderValue::from_str(&session::set_cookie(&id)).map_err(|e| EdgeError::Internal(e.to_string()))?;
    res.headers_mut().insert(SET_COOKIE, cookie);
    Ok(res)
}

/// `@livestore/sync-cf`'s admin messages, answered in its shapes.
async fn livestore_message(
    req: Request<Incoming>,
    state: &EdgeState,
    secret: &str,
    segment: &str,
) -> Result<HttpResponse, EdgeError> {
    let bearer = super::admit::bearer_token(&req);
    let msg = json_body(req).await?;
    let action = match msg["_tag"].as_str() {
        Some("SyncMessage.AdminInfoRequest") => AdminAction::Info,
        Some("SyncMessage.AdminResetRoomRequest") => AdminAction::Reset,
        other => {
            return Err(EdgeError::BadRequest(format!(
                "unknown admin message {other:?}: expected SyncMessage.AdminInfoRequest or SyncMessage.AdminResetRoomRequest"
            )))
        }
    };
    let presented = bearer.or_else(|| msg["adminSecret"].as_str().map(str::to_string));
    if !token_matches(presented.as_deref(), secret) {
        return Err(EdgeError::Unauthorized("admin endpoints need Authorization: Bearer <admin secret>".into()));
    }
    let id = store_id(segment)?;
    let v: serde_json::Value = serde_json::from_str(&ask_owner(state, &id, action).await?)
        .map_err(|e| EdgeError::Internal(format!("admin answer: {e}")))?;
    Ok(json_response(&match action {
        AdminAction::Reset => json!({ "_tag": "SyncMessage.AdminResetRoomResponse" }),
        _ => json!({ "_tag": "SyncMessage.AdminInfoResponse", "info": { "durableObjectId": &*id, "store": v } }),
    }))
}
