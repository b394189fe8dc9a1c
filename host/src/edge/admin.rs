//! The admin API, on only when an admin secret is configured: `GET /admin/stores/{id}` (info),
//! `POST /admin/stores/{id}/reset`, and on `POST /admin/stores/{id}` the LiveStore admin
//! messages `@livestore/sync-cf` defines (`SyncMessage.AdminInfoRequest`,
//! `SyncMessage.AdminResetRoomRequest`, secret in `adminSecret`). `{id}` is one
//! percent-encoded path segment.

use super::admit::bearer_token;
use super::error::EdgeError;
use super::state::{ask, EdgeState, HttpResponse};
use crate::auth::token_matches;
use crate::shard::{AdminAction, AdminError, ShardMsg};
use crate::store_id::{validate_store_id, StoreIdError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use percent_encoding::percent_decode_str;
use std::sync::Arc;

/// The largest body a LiveStore admin message may have.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

pub async fn handle(req: Request<Incoming>, state: &EdgeState) -> Result<HttpResponse, EdgeError> {
    let Some(secret) = state.config.admin_secret.clone() else {
        return Err(EdgeError::NotFound("admin endpoints are disabled (set --admin-secret / ADMIN_SECRET)".into()));
    };
    let path = req.uri().path().trim_end_matches('/').to_string();
    let parts: Vec<&str> = path.split('/').collect();
    let method = req.method().clone();
    let mut presented = bearer_token(&req);
    let mut livestore_message = None;
    let (segment, action) = match (&method, parts.as_slice()) {
        (&Method::GET, ["", "admin", "stores", id]) => (*id, AdminAction::Info),
        (&Method::POST, ["", "admin", "stores", id, "reset"]) => (*id, AdminAction::Reset),
        (&Method::POST, ["", "admin", "stores", id]) => {
            let body = Limited::new(req.into_body(), MAX_MESSAGE_BYTES)
                .collect()
                .await
                .map_err(|e| EdgeError::PayloadTooLarge(e.to_string()))?
                .to_bytes();
            let msg: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| EdgeError::BadRequest(format!("body is not JSON: {e}")))?;
            if presented.is_none() {
                presented = msg["adminSecret"].as_str().map(str::to_string);
            }
            let action = match msg["_tag"].as_str() {
                Some("SyncMessage.AdminInfoRequest") => AdminAction::Info,
                Some("SyncMessage.AdminResetRoomRequest") => AdminAction::Reset,
                other => {
                    return Err(EdgeError::BadRequest(format!(
                        "unknown admin message {other:?}: expected SyncMessage.AdminInfoRequest or SyncMessage.AdminResetRoomRequest"
                    )))
                }
            };
            livestore_message = Some(action);
            (*id, action)
        }
        _ => {
            return Err(EdgeError::NotFound(
                "unknown admin endpoint: GET /admin/stores/{id}, POST /admin/stores/{id}/reset".into(),
            ))
        }
    };
    if !token_matches(presented.as_deref(), &secret) {
        return Err(EdgeError::Unauthorized("admin endpoints need Authorization: Bearer <admin secret>".into()));
    }
    // `/` in an id is `%2F`, so the path was split before decoding.
    let store_id = percent_decode_str(segment).decode_utf8().map_err(|_| StoreIdError::NotUtf8)?;
    validate_store_id(&store_id)?;
    let store_id: Arc<str> = store_id.into();
    let shard = state.shards.route(&store_id);
    let reply = ask(shard, |reply| ShardMsg::Admin { store_id: store_id.clone(), action, reply }).await?;
    let v = reply.map_err(|e| match e {
        AdminError::NotFound(m) => EdgeError::NotFound(m),
        AdminError::Failed(m) => EdgeError::Internal(m),
    })?;
    let v = match livestore_message {
        None => v,
        Some(AdminAction::Info) => serde_json::json!({
            "_tag": "SyncMessage.AdminInfoResponse",
            "info": { "durableObjectId": &*store_id, "store": v },
        }),
        Some(AdminAction::Reset) => serde_json::json!({ "_tag": "SyncMessage.AdminResetRoomResponse" }),
    };
    let mut res = Response::new(Full::new(Bytes::from(v.to_string())));
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(res)
}
