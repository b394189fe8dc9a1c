//! Who may use the admin API: a caller presenting the admin secret (`Authorization: Bearer`),
//! or the console signed in with it (a session cookie). Cookie-authenticated requests that
//! change something must also echo the session's CSRF token in `X-CSRF-Token`; the cookie is
//! `SameSite=Strict` as well, so another site can neither send it nor read the token.

use super::super::admit::bearer_token;
use super::super::error::EdgeError;
use super::super::state::EdgeState;
use crate::auth::token_matches;
use crate::lock::lock;
use hyper::body::Incoming;
use hyper::header::COOKIE;
use hyper::Request;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const COOKIE_NAME: &str = "livestore_sync_admin";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A console session lasts this long from sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at once; the oldest go first (signing in again is cheap).
const MAX_SESSIONS: usize = 1024;

struct Session {
    csrf: String,
    expires: Instant,
}

#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session: (cookie value, CSRF token).
    pub fn create(&self) -> (String, String) {
        let (id, csrf) = (nanoid::nanoid!(32), nanoid::nanoid!(32));
        let mut sessions = lock(&self.by_id);
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone()) {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), Session { csrf: csrf.clone(), expires: now + SESSION_TTL });
        (id, csrf)
    }

    /// The CSRF token of a live session.
    pub fn csrf(&self, id: &str) -> Option<String> {
        let sessions = lock(&self.by_id);
        sessions.get(id).filter(|s| s.expires > Instant::now()).map(|s| s.csrf.clone())
    }

    pub fn remove(&self, id: &str) {
        lock(&self.by_id).remove(id);
    }
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_string())
}

/// `Set-Cookie` for a new session (`Secure`: browsers also accept it from http://localhost).
pub fn set_cookie(id: &str) -> String {
    format!("{COOKIE_NAME}={id}; Path=/admin; HttpOnly; Secure; SameSite=Strict; Max-Age={}", SESSION_TTL.as_secs())
}

pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/admin; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// How the caller proved it may use the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Bearer,
    Session { id: String, csrf: String },
}

/// Check the caller; `changes_state` requests from the console need the CSRF token too.
pub fn authorize(
    req: &Request<Incoming>,
    state: &EdgeState,
    secret: &str,
    changes_state: bool,
) -> Result<Caller, EdgeError> {
    if let Some(presented) = bearer_token(req) {
        if token_matches(Some(&presented), secret) {
            return Ok(Caller::Bearer);
        }
        return Err(EdgeError::Unauthorized("wrong admin secret".into()));
    }
    let session = session_cookie(req).and_then(|id| state.sessions.csrf(&id).map(|csrf| (id, csrf)));
    let Some((id, csrf)) = session else {
        return Err(EdgeError::Unauthorized(
            "admin endpoints need Authorization: Bearer <admin secret> (or the console's sign-in)".into(),
        ));
    };
    if changes_state {
        let echoed = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !token_matches(echoed, &csrf) {
            return Err(EdgeError::Forbidden(format!("missing or wrong {CSRF_HEADER} header for this session")));
        }
    }
    Ok(Caller::Session { id, csrf })
}
