//! The admin API's JSON answers: the server overview, the store list, one store's info,
//! events and connections, and reset. Each store question goes to the store's owner (its
//! shard), as the CLI's questions go to the data file.

use super::super::error::EdgeError;
use super::super::state::{ask, full, EdgeState, HttpResponse};
use crate::activity::metric_sum;
use crate::shard::{AdminAction, AdminError, ShardMsg};
use crate::store_admin::StoreInfo;
use crate::sync_params::query_param;
use crate::telemetry;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::Response;
use serde_json::{json, Value};
use std::sync::Arc;

/// Stores per page of `GET /admin/stores` (default, most).
const STORES_PAGE: usize = 50;
const STORES_PAGE_MAX: usize = 500;
/// Events per page of `GET /admin/stores/{id}/events` (default, most).
const EVENTS_PAGE: u32 = 100;
const EVENTS_PAGE_MAX: u32 = 1000;

pub fn json_response(v: &Value) -> HttpResponse {
    json_text_response(v.to_string())
}

/// JSON already serialized (the store owners answer in text, so args keep their bytes).
pub fn json_text_response(text: String) -> HttpResponse {
    let mut res = Response::new(full(text));
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Ask a store's owner (or, for the list, any shard); the answer is JSON text.
pub async fn ask_owner(state: &EdgeState, store_id: &Arc<str>, action: AdminAction) -> Result<String, EdgeError> {
    let shard = if action == AdminAction::List { state.shards.any() } else { state.shards.route(store_id) };
    let reply = ask(shard, |reply| ShardMsg::Admin { store_id: store_id.clone(), action, reply }).await?;
    Ok(reply?)
}

impl From<AdminError> for EdgeError {
    fn from(e: AdminError) -> EdgeError {
        match e {
            AdminError::NotFound(m) => EdgeError::NotFound(m),
            AdminError::Refused(m) => EdgeError::BadRequest(m),
            AdminError::Failed(m) => EdgeError::Internal(m),
        }
    }
}

/// A numeric query parameter within `range`, `default` when absent.
fn number<T>(query: Option<&str>, name: &str, default: T, range: std::ops::RangeInclusive<T>) -> Result<T, EdgeError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(raw) = query_param(query, name) else { return Ok(default) };
    match raw.parse::<T>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(EdgeError::BadRequest(format!(
            "{name}={raw:?}: expected a number from {} to {}",
            range.start(),
            range.end()
        ))),
    }
}

/// `GET /admin/overview`: what the console's first page shows.
pub fn overview(state: &EdgeState) -> HttpResponse {
    let metrics = telemetry::render();
    json_response(&json!({
        "version": env!("CARGO_PKG_VERSION"),
        "component": crate::runtime::GUEST_SHA256.trim(),
        "uptimeSeconds": state.started.elapsed().as_secs(),
        "connections": metric_sum(&metrics, telemetry::OPEN_CONNECTIONS),
        "openStores": metric_sum(&metrics, telemetry::ACTIVE_STORES),
        "pushesAccepted": metric_sum(&metrics, telemetry::PUSHES_ACCEPTED),
        "eventsPushed": metric_sum(&metrics, telemetry::EVENTS_PUSHED),
        "hookFailures": metric_sum(&metrics, telemetry::HOOK_FAILURES),
        "refusedConnections": metric_sum(&metrics, telemetry::CONNECTIONS_REFUSED),
        "sampleSeconds": crate::activity::SAMPLE_EVERY.as_secs(),
        "sampleSlots": crate::activity::SAMPLES,
        "activity": state.activity.samples(),
    }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Id,
    Events,
    LastSync,
}

/// `GET /admin/stores?prefix=&sort=lastSync|events|id&order=asc|desc&offset=&limit=`.
pub async fn list(state: &EdgeState, query: Option<&str>) -> Result<HttpResponse, EdgeError> {
    let sort = match query_param(query, "sort").as_deref() {
        None | Some("lastSync") => SortBy::LastSync,
        Some("events") => SortBy::Events,
        Some("id") => SortBy::Id,
        Some(other) => return Err(EdgeError::BadRequest(format!("sort={other:?}: expected lastSync, events or id"))),
    };
    let descending = match query_param(query, "order").as_deref() {
        None => sort != SortBy::Id,
        Some("desc") => true,
        Some("asc") => false,
        Some(other) => return Err(EdgeError::BadRequest(format!("order={other:?}: expected asc or desc"))),
    };
    let offset = number(query, "offset", 0usize, 0..=usize::MAX)?;
    let limit = number(query, "limit", STORES_PAGE, 1..=STORES_PAGE_MAX)?;
    let prefix = query_param(query, "prefix").unwrap_or_default();
    let all = ask_owner(state, &Arc::from(""), AdminAction::List).await?;
    let mut stores: Vec<StoreInfo> =
        serde_json::from_str(&all).map_err(|e| EdgeError::Internal(format!("store list: {e}")))?;
    stores.retain(|s| s.store_id.starts_with(&prefix));
    stores.sort_by(|a, b| {
        let by = match sort {
            SortBy::Id => a.store_id.cmp(&b.store_id),
            SortBy::Events => a.event_count.cmp(&b.event_count),
            SortBy::LastSync => a.last_sync_at.cmp(&b.last_sync_at),
        };
        // Ties in id order, whatever the direction, so pages never overlap.
        let by = if descending { by.reverse() } else { by };
        by.then_with(|| a.store_id.cmp(&b.store_id))
    });
    let total = stores.len();
    let page: Vec<StoreInfo> = stores.into_iter().skip(offset).take(limit).collect();
    let next = (offset + page.len() < total).then_some(offset + page.len());
    Ok(json_response(&json!({ "total": total, "offset": offset, "limit": limit, "next": next, "stores": page })))
}

/// `GET /admin/stores/{id}/events?after=&limit=`.
pub async fn events(state: &EdgeState, store_id: &Arc<str>, query: Option<&str>) -> Result<HttpResponse, EdgeError> {
    let after = number(query, "after", 0i64, 0..=crate::store_admin::MAX_SEQ_NUM)?;
    let limit = number(query, "limit", EVENTS_PAGE, 1..=EVENTS_PAGE_MAX)?;
    Ok(json_text_response(ask_owner(state, store_id, AdminAction::Events { after, limit }).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_checked_against_their_range() {
        assert_eq!(number(Some("limit=5"), "limit", 50usize, 1..=500), Ok(5));
        assert_eq!(number(None, "limit", 50usize, 1..=500), Ok(50));
        for bad in ["limit=0", "limit=501", "limit=x", "limit=-1", "limit="] {
            let err = number(Some(bad), "limit", 50usize, 1..=500).err().map(|e| e.message().to_string());
            assert!(err.is_some_and(|m| m.contains("from 1 to 500")), "{bad}");
        }
    }
}
