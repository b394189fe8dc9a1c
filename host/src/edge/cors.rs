//! Browser origins: the `--allowed-origin` allowlist and CORS preflights (`--cors`).

use super::error::EdgeError;
use super::state::HttpResponse;
use crate::telemetry::CONNECTIONS_REFUSED;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ORIGIN, VARY,
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

/// The `Access-Control-Allow-Origin` of a response under `--cors`: `*` for any origin, or,
/// with an allowlist, the request's own origin when listed (a browser accepts one origin, not
/// a list), with `Vary: Origin` so caches keep answers per origin apart.
pub enum AllowOrigin {
    Any,
    Echo(HeaderValue),
    /// An allowlist is set and the request's origin is not on it (or absent).
    Nothing,
}

pub fn allow_origin(req: &Request<Incoming>, allowed: &[String]) -> AllowOrigin {
    if allowed.is_empty() || allowed.iter().any(|a| a == "*") {
        return AllowOrigin::Any;
    }
    match req.headers().get(ORIGIN) {
        Some(origin) if origin.to_str().is_ok_and(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(o))) => {
            AllowOrigin::Echo(origin.clone())
        }
        _ => AllowOrigin::Nothing,
    }
}

impl AllowOrigin {
    pub fn apply(self, headers: &mut HeaderMap) {
        match self {
            AllowOrigin::Any => {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            }
            AllowOrigin::Echo(origin) => {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                headers.append(VARY, HeaderValue::from_static("Origin"));
            }
            AllowOrigin::Nothing => {
                headers.append(VARY, HeaderValue::from_static("Origin"));
            }
        }
    }
}

pub fn preflight(req: &Request<Incoming>) -> HttpResponse {
    let mut res = Response::new(super::state::full(Bytes::new()));
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
