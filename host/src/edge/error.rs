//! Why the edge refused a request. The HTTP status follows from the kind, never from the text.

use super::state::{full, HttpResponse};
use crate::hooks::HookError;
use crate::store_id::StoreIdError;
use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, SEC_WEBSOCKET_VERSION};
use hyper::{Response, StatusCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeError {
    /// The request itself is wrong: store id, payload, token, a hook's refusal.
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    MethodNotAllowed(String),
    /// The request (its body) did not arrive in time.
    RequestTimeout(String),
    PayloadTooLarge(String),
    /// `transport=ws` without a WebSocket upgrade.
    UpgradeRequired(String),
    /// A WebSocket upgrade for a protocol version other than 13 (RFC 6455 §4.4).
    WebSocketVersion(String),
    /// A per-client limit was reached.
    TooManyRequests(String),
    /// The server failed (a hook or the sync component), not the client.
    Internal(String),
    /// Shutting down, storage unavailable, or a limit reached: try again later.
    Unavailable(String),
}

impl EdgeError {
    pub fn status(&self) -> StatusCode {
        match self {
            EdgeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            EdgeError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            EdgeError::Forbidden(_) => StatusCode::FORBIDDEN,
            EdgeError::NotFound(_) => StatusCode::NOT_FOUND,
            EdgeError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            EdgeError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            EdgeError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            EdgeError::UpgradeRequired(_) | EdgeError::WebSocketVersion(_) => StatusCode::UPGRADE_REQUIRED,
            EdgeError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            EdgeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            EdgeError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            EdgeError::BadRequest(m)
            | EdgeError::Unauthorized(m)
            | EdgeError::Forbidden(m)
            | EdgeError::NotFound(m)
            | EdgeError::MethodNotAllowed(m)
            | EdgeError::RequestTimeout(m)
            | EdgeError::PayloadTooLarge(m)
            | EdgeError::UpgradeRequired(m)
            | EdgeError::WebSocketVersion(m)
            | EdgeError::TooManyRequests(m)
            | EdgeError::Internal(m)
            | EdgeError::Unavailable(m) => m,
        }
    }

    pub fn shutting_down() -> EdgeError {
        EdgeError::Unavailable("Server is shutting down".into())
    }

    pub fn into_response(self) -> HttpResponse {
        let mut res = text(self.status(), format!("{}\n", self.message()));
        if let EdgeError::WebSocketVersion(_) = self {
            res.headers_mut().insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        }
        res
    }
}

impl From<StoreIdError> for EdgeError {
    fn from(e: StoreIdError) -> Self {
        EdgeError::BadRequest(e.to_string())
    }
}

impl From<HookError> for EdgeError {
    /// A hook's refusal is the client's problem; a hook that failed is the server's.
    fn from(e: HookError) -> Self {
        match e {
            HookError::Rejected(message) => EdgeError::BadRequest(message),
            failed => EdgeError::Internal(failed.message()),
        }
    }
}

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    let mut res = Response::new(full(Bytes::from(body.into())));
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain;charset=UTF-8"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_decides_the_status() {
        assert_eq!(EdgeError::from(StoreIdError::Empty).status(), StatusCode::BAD_REQUEST);
        assert_eq!(EdgeError::from(HookError::Rejected("no".into())).status(), StatusCode::BAD_REQUEST);
        assert_eq!(EdgeError::NotFound("x".into()).status(), StatusCode::NOT_FOUND);
        assert_eq!(EdgeError::shutting_down().status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
