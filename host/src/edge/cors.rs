//! Browser origins: the `--allowed-origin` allowlist and CORS preflights (`--cors`).

use super::error::EdgeError;
use super::state::HttpResponse;
use crate::telemetry::CONNECTIONS_REFUSED;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ORIGIN,
};
use hyper::{Request, Response, StatusCode};

/// Browsers send `Origin`; other clients usually do not and are not limited by the allowlist.
pub fn check_origin(req: &Request<Incoming>, allowed: &[String]) -> Result<(), EdgeError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let ok = match req.headers().get(ORIGIN).and_then(|o| o.to_str().ok()) {
        None => true,
        Some(origin) => allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(origin)),
    };
    if ok {
        Ok(())
    } else {
        metrics::counter!(CONNECTIONS_REFUSED, "reason" => "origin").increment(1);
        Err(EdgeError::Forbidden("Origin not allowed".into()))
    }
}

pub fn preflight(req: &Request<Incoming>) -> HttpResponse {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::NO_CONTENT;
    let h = res.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
    let allow = req.headers().get(ACCESS_CONTROL_REQUEST_HEADERS).cloned().unwrap_or_else(|| {
        HeaderValue::from_static("content-type, authorization, x-livestore-store-id, traceparent, b3")
    });
    h.insert(ACCESS_CONTROL_ALLOW_HEADERS, allow);
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    res
}
