//! The network edge: HTTP/1.1 with hyper, WebSocket upgrades with tokio-tungstenite.
//! It parses the sync query, checks auth, and moves frames between sockets and the
//! store shards; it never looks inside a sync frame.

use crate::auth::token_matches;
use crate::conn_queue::{conn_queue, ConnReceiver, ConnSender};
use crate::hooks::{HookError, HookFn, Hooks};
use crate::runtime::{OpenInfo, Outgoing, Protocol, SyncRuntime};
use crate::shard::{AdminAction, ShardMsg, ShardSettings, Shards};
use crate::storage::Durability;
use crate::store_id::{validate_store_id, StoreIdError, StoreIdPattern};
use crate::sync_params::{SyncParams, Transport};
use crate::telemetry::CONNECTIONS_REFUSED;
use crate::telemetry::{self, HTTP_REQUESTS, OPEN_CONNECTIONS};
use anyhow::{Context, Result};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::ORIGIN;
use hyper::header::{
    HeaderValue, ACCEPT_ENCODING, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, AUTHORIZATION, CONNECTION,
    CONTENT_ENCODING, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE,
};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::task::TaskTracker;

/// Per-socket read buffer (see `accept_socket`).
const READ_BUFFER_BYTES: usize = 8 * 1024;

pub const INFO_TEXT: &str = "Info: livestore-sync, a LiveStore sync backend (wire-compatible with @livestore/sync-cf). Connect with ?storeId=…&payload=…&transport=ws\n";

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// When set, a connection's payload must carry this `authToken`.
    pub auth_token: Option<String>,
    pub durability: Durability,
    /// Store shard threads (serial owners); 0 picks the number of CPUs.
    pub shards: usize,
    /// Largest accepted WebSocket message (larger ones close the connection with 1009) and
    /// HTTP-transport body.
    pub max_frame_bytes: usize,
    /// Answer CORS preflights and allow any origin (the reference's `enableCORS`).
    pub cors: bool,
    /// Request headers (lower-case names) kept with each connection and given to the component.
    pub forward_headers: Vec<String>,
    /// Enables `/admin/…` (Bearer token).
    pub admin_secret: Option<String>,
    /// Unsent bytes a connection may have queued before it is cut off (close 1013).
    pub max_queue_bytes: usize,
    /// A socket write that takes longer than this drops the connection.
    pub send_timeout: Duration,
    /// Open WebSocket connections at once; more get `503`.
    pub max_connections: usize,
    /// Close a connection that sent nothing for this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// When non-empty, requests whose `Origin` header is not listed get `403`.
    pub allowed_origins: Vec<String>,
    /// The most events one push may carry.
    pub max_push_events: u32,
    /// Store instances open at once (idle ones are evicted and reopened from storage).
    pub max_open_stores: usize,
    /// Idle store instances kept warm (evicted beyond this; reopened from storage on demand).
    pub idle_store_cache: usize,
    /// Operator hook components and their sandbox limits.
    pub hooks: crate::hooks::HookSettings,
    /// A stricter store-id rule for connecting clients (`--store-id-pattern`).
    pub store_id_pattern: Option<StoreIdPattern>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8787,
            data_dir: PathBuf::from(".livestore-sync"),
            auth_token: None,
            durability: Durability::Normal,
            shards: 0,
            max_frame_bytes: 1 << 20,
            cors: false,
            forward_headers: Vec::new(),
            admin_secret: None,
            max_queue_bytes: 16 << 20,
            send_timeout: Duration::from_secs(30),
            max_connections: 20_000,
            idle_timeout: Some(Duration::from_secs(300)),
            allowed_origins: Vec::new(),
            max_push_events: 1000,
            max_open_stores: 10_000,
            idle_store_cache: 256,
            hooks: crate::hooks::HookSettings::default(),
            store_id_pattern: None,
        }
    }
}

struct AppState {
    config: ServerConfig,
    hooks: Option<Arc<Hooks>>,
    shards: Arc<Shards>,
    next_conn: AtomicU64,
    open_sockets: AtomicUsize,
    shutdown: watch::Receiver<bool>,
    tracker: TaskTracker,
}

/// A started server; dropping it does not stop it, call [`RunningServer::shutdown`].
pub struct RunningServer {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting, close every WebSocket with 1001, let the stores finish what is
    /// queued (in-flight pushes complete), then close storage.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await.context("waiting for the server to stop")
    }
}

/// The compiled component is shared by every server in the process (tests start several).
fn runtime(cache_dir: PathBuf) -> Result<Arc<SyncRuntime>> {
    static RUNTIME: OnceLock<Arc<SyncRuntime>> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt.clone());
    }
    let rt = Arc::new(SyncRuntime::load(Some(&cache_dir))?);
    Ok(RUNTIME.get_or_init(|| rt).clone())
}

pub async fn start(config: ServerConfig) -> Result<RunningServer> {
    telemetry::init();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let cache_dir = config.data_dir.join("cache");
    let rt = tokio::task::spawn_blocking(move || runtime(cache_dir)).await??;
    let shard_count = if config.shards == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
    } else {
        config.shards
    };
    let hook_settings = config.hooks.clone();
    let hooks = tokio::task::spawn_blocking(move || Hooks::load(&hook_settings)).await??;
    let db_path = config.data_dir.join("sync.db");
    let settings = ShardSettings {
        shards: shard_count,
        durability: config.durability,
        auth_token: config.auth_token.clone(),
        max_push_events: config.max_push_events,
        max_open_stores: config.max_open_stores,
        idle_store_cache: config.idle_store_cache,
        hooks: hooks.clone(),
    };
    let shards = Arc::new(Shards::start(rt, db_path, settings)?);
    let listener = TcpListener::bind((config.host.as_str(), config.port))
        .await
        .with_context(|| format!("listening on {}:{}", config.host, config.port))?;
    let local_addr = listener.local_addr()?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = Arc::new(AppState {
        config,
        hooks,
        shards: shards.clone(),
        next_conn: AtomicU64::new(1),
        open_sockets: AtomicUsize::new(0),
        shutdown: shutdown_rx.clone(),
        tracker: TaskTracker::new(),
    });
    let task = tokio::spawn(accept_loop(listener, state, shards, shutdown_rx));
    Ok(RunningServer { local_addr, shutdown: shutdown_tx, task })
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<AppState>,
    shards: Arc<Shards>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let state2 = state.clone();
                    state.tracker.spawn(serve_connection(tcp, state2));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    state.tracker.close();
    if tokio::time::timeout(Duration::from_secs(10), state.tracker.wait()).await.is_err() {
        tracing::warn!("some connections did not close within 10 s");
    }
    // Everything the connections queued is ahead of Stop in each shard's queue.
    let _ = tokio::task::spawn_blocking(move || shards.stop()).await;
}

async fn serve_connection(tcp: tokio::net::TcpStream, state: Arc<AppState>) {
    let mut shutdown = state.shutdown.clone();
    let state2 = state.clone();
    let service = service_fn(move |req| handle(req, state2.clone()));
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => { if let Err(e) = res { tracing::debug!(error = %e, "http connection ended with an error"); } }
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body.into())));
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain;charset=UTF-8"));
    res
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<AppState>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let cors = state.config.cors;
    let mut res = route(req, state).await;
    if cors {
        res.headers_mut().insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    Ok(res)
}

async fn route(req: Request<Incoming>, state: Arc<AppState>) -> Response<Full<Bytes>> {
    if state.config.cors && req.method() == Method::OPTIONS {
        return preflight(&req);
    }
    if !origin_allowed(&req, &state.config.allowed_origins) {
        metrics::counter!(CONNECTIONS_REFUSED, "reason" => "origin").increment(1);
        return text(StatusCode::FORBIDDEN, "Origin not allowed\n");
    }
    let params = SyncParams::parse(req.uri().query());
    match (req.method(), req.uri().path(), params.transport) {
        (&Method::GET, "/health", None) => return health(&state).await,
        (&Method::GET, "/metrics", None) => {
            let mut res = text(StatusCode::OK, telemetry::render());
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            return res;
        }
        (_, path, None) if path.starts_with("/admin/") => return admin(req, &state).await,
        _ => {}
    }
    let Some(transport) = params.transport else {
        if is_websocket_upgrade(&req) && params.store_id.is_some() {
            return simple_upgrade(req, params, state).await;
        }
        return if req.method() == Method::GET && req.uri().path() == "/" {
            text(StatusCode::OK, INFO_TEXT)
        } else {
            text(
                StatusCode::BAD_REQUEST,
                "Invalid path: expected a sync request (?storeId=…&payload=…&transport=ws|http), /health or /metrics\n",
            )
        };
    };
    let store_id = match admitted_store_id(&params, &state.config) {
        Ok(id) => id,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    if let Some(Err(raw)) = &params.payload {
        return text(StatusCode::BAD_REQUEST, format!("payload is not URL-encoded JSON: {raw:?}\n"));
    }
    match transport {
        Transport::Ws => upgrade(req, store_id, params, state).await,
        Transport::Http => http_rpc(req, store_id, params, state).await,
    }
}

/// The store id a client asks to connect to, checked against the store-id rule and the
/// operator's pattern (every refusal is a 400 that says why).
fn admitted_store_id(params: &SyncParams, config: &ServerConfig) -> Result<String, StoreIdError> {
    let id = params.store_id()?;
    if let Some(pattern) = &config.store_id_pattern {
        pattern.check(id)?;
    }
    Ok(id.to_string())
}

/// `GET /admin/stores/{id}` (info) and `POST /admin/stores/{id}/reset`, with
/// `Authorization: Bearer <admin secret>`; off unless an admin secret is configured.
/// `POST /admin/stores/{id}` also takes the LiveStore admin messages the reference defines
/// but never wired: `{"_tag":"SyncMessage.AdminInfoRequest","adminSecret":…}` and
/// `{"_tag":"SyncMessage.AdminResetRoomRequest","adminSecret":…}`.
async fn admin(req: Request<Incoming>, state: &AppState) -> Response<Full<Bytes>> {
    let Some(secret) = state.config.admin_secret.clone() else {
        return text(StatusCode::NOT_FOUND, "admin endpoints are disabled (set --admin-secret / ADMIN_SECRET)\n");
    };
    let path = req.uri().path().trim_end_matches('/').to_string();
    let parts: Vec<&str> = path.split('/').collect();
    let method = req.method().clone();
    let mut presented = bearer_token(&req);
    let mut livestore_message = None;
    let (store_id, action) = match (&method, parts.as_slice()) {
        (&Method::GET, ["", "admin", "stores", id]) => (*id, AdminAction::Info),
        (&Method::POST, ["", "admin", "stores", id, "reset"]) => (*id, AdminAction::Reset),
        (&Method::POST, ["", "admin", "stores", id]) => {
            let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return text(StatusCode::PAYLOAD_TOO_LARGE, format!("{e}\n")),
            };
            let msg: serde_json::Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return text(StatusCode::BAD_REQUEST, format!("body is not JSON: {e}\n")),
            };
            if presented.is_none() {
                presented = msg["adminSecret"].as_str().map(str::to_string);
            }
            let action = match msg["_tag"].as_str() {
                Some("SyncMessage.AdminInfoRequest") => AdminAction::Info,
                Some("SyncMessage.AdminResetRoomRequest") => AdminAction::Reset,
                other => {
                    let m = format!(
                        "unknown admin message {other:?}: expected SyncMessage.AdminInfoRequest or SyncMessage.AdminResetRoomRequest\n"
                    );
                    return text(StatusCode::BAD_REQUEST, m);
                }
            };
            livestore_message = Some(action);
            (*id, action)
        }
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "unknown admin endpoint: GET /admin/stores/{id}, POST /admin/stores/{id}/reset\n",
            )
        }
    };
    if !token_matches(presented.as_deref(), &secret) {
        return text(StatusCode::UNAUTHORIZED, "admin endpoints need Authorization: Bearer <admin secret>\n");
    }
    // The id is one percent-encoded path segment (`/` in an id is `%2F`).
    let store_id = match percent_decode_str(store_id).decode_utf8() {
        Ok(id) => id,
        Err(_) => return text(StatusCode::BAD_REQUEST, format!("{}\n", StoreIdError::NotUtf8)),
    };
    if let Err(e) = validate_store_id(&store_id) {
        return text(StatusCode::BAD_REQUEST, format!("{e}\n"));
    }
    let store_id: Arc<str> = store_id.into();
    let shard = state.shards.route(&store_id);
    let Some(reply) = ask(shard, |reply| ShardMsg::Admin { store_id: store_id.clone(), action, reply }).await else {
        return shutting_down();
    };
    match reply {
        Ok(v) => {
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
            res
        }
        Err(e) if e.contains("does not exist") => text(StatusCode::NOT_FOUND, format!("{e}\n")),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// Send a request to a store owner and wait for its reply; `None` when the server is stopping.
async fn ask<T>(
    shard: &mpsc::UnboundedSender<ShardMsg>,
    msg: impl FnOnce(oneshot::Sender<T>) -> ShardMsg,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    shard.send(msg(tx)).ok()?;
    rx.await.ok()
}

fn shutting_down() -> Response<Full<Bytes>> {
    text(StatusCode::SERVICE_UNAVAILABLE, "Server is shutting down\n")
}

/// Browsers send `Origin`; other clients usually do not and are not limited by the allowlist.
fn origin_allowed(req: &Request<Incoming>, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    match req.headers().get(ORIGIN).and_then(|o| o.to_str().ok()) {
        None => true,
        Some(origin) => allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(origin)),
    }
}

fn preflight(req: &Request<Incoming>) -> Response<Full<Bytes>> {
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

async fn health(state: &AppState) -> Response<Full<Bytes>> {
    let (tx, rx) = oneshot::channel();
    if state.shards.any().send(ShardMsg::Health { reply: tx }).is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    match tokio::time::timeout(Duration::from_secs(5), rx).await {
        Ok(Ok(Ok(()))) => text(StatusCode::OK, "ok\n"),
        Ok(Ok(Err(e))) => text(StatusCode::SERVICE_UNAVAILABLE, format!("storage is not writable: {e}\n")),
        _ => text(StatusCode::SERVICE_UNAVAILABLE, "storage did not answer within 5 s\n"),
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

fn bearer_token(req: &Request<Incoming>) -> Option<String> {
    let v = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

fn invalid_token() -> Response<Full<Bytes>> {
    text(StatusCode::BAD_REQUEST, "Invalid auth token: the payload's authToken does not match the server's token\n")
}

/// LiveStore HTTP transport: one RPC request per POST body; the reply is the JSON array of
/// every response message.
async fn http_rpc(
    req: Request<Incoming>,
    store_id: String,
    params: SyncParams,
    state: Arc<AppState>,
) -> Response<Full<Bytes>> {
    if let Some(expected) = &state.config.auth_token {
        if !token_matches(params.auth_token(), expected) {
            return invalid_token();
        }
    }
    if let Some(refused) = validate_payload(&state, &store_id, params.payload_json(), &req).await {
        return refused;
    }
    metrics::counter!(HTTP_REQUESTS).increment(1);
    let gzip = req
        .headers()
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let limit = state.config.max_frame_bytes;
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return text(StatusCode::PAYLOAD_TOO_LARGE, format!("request body over {limit} bytes: {e}\n")),
    };
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return text(StatusCode::BAD_REQUEST, "request body is not UTF-8\n");
    };
    let store_id: Arc<str> = store_id.into();
    let shard = state.shards.route(&store_id);
    let payload = params.payload_json();
    let json = match ask(shard, |reply| ShardMsg::Http { store_id: store_id.clone(), payload, body, reply }).await {
        Some(Ok(json)) => json,
        Some(Err(e)) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        None => return shutting_down(),
    };
    let mut res = if gzip && json.len() > 1024 {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        match enc.write_all(json.as_bytes()).and_then(|_| enc.finish()) {
            Ok(zipped) => {
                let mut res = Response::new(Full::new(Bytes::from(zipped)));
                res.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                res
            }
            Err(_) => Response::new(Full::new(Bytes::from(json))),
        }
    } else {
        Response::new(Full::new(Bytes::from(json)))
    };
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// The seed's simple JSON protocol: `ws://host/websocket?storeId=…` without `transport`.
/// The token may come in the URL (`token=` or the payload's `authToken`), an
/// `Authorization: Bearer` header, or the first message (`{"type":"auth",…}`).
async fn simple_upgrade(req: Request<Incoming>, params: SyncParams, state: Arc<AppState>) -> Response<Full<Bytes>> {
    let store_id = match admitted_store_id(&params, &state.config) {
        Ok(id) => id,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let presented =
        params.token.clone().or_else(|| params.auth_token().map(str::to_string)).or_else(|| bearer_token(&req));
    let authenticated = match (&state.config.auth_token, presented) {
        (None, _) => true,
        (Some(expected), Some(token)) => {
            if !token_matches(Some(&token), expected) {
                return invalid_token();
            }
            true
        }
        (Some(_), None) => false,
    };
    if let Some(refused) = validate_payload(&state, &store_id, params.payload_json(), &req).await {
        return refused;
    }
    let info = OpenInfo {
        protocol: Protocol::Simple,
        authenticated,
        client_id: params.client_id.clone(),
        payload: params.payload_json(),
        headers: forwarded_headers(&req, &state.config.forward_headers),
    };
    accept_socket(req, store_id, info, state).await
}

/// The validate-payload hooks at connect: `Some(response)` refuses the request (400 with the
/// hook's message; 500 when a hook failed).
async fn validate_payload(
    state: &AppState,
    store_id: &str,
    payload: Option<String>,
    req: &Request<Incoming>,
) -> Option<Response<Full<Bytes>>> {
    let hooks = state.hooks.clone().filter(|h| h.has(HookFn::ValidatePayload))?;
    // Hooks see the forwarded headers and, as the seed's curl example sends it, Authorization.
    let mut headers = forwarded_headers(req, &state.config.forward_headers);
    if let Some(auth) = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if !headers.iter().any(|(k, _)| k == "authorization") {
            headers.push(("authorization".to_string(), auth.to_string()));
        }
    }
    let store = store_id.to_string();
    let verdict =
        tokio::task::spawn_blocking(move || hooks.validate_payload(&store, payload.as_deref(), &headers)).await;
    match verdict {
        Ok(Ok(())) => None,
        Ok(Err(HookError::Rejected(message))) => {
            metrics::counter!(CONNECTIONS_REFUSED, "reason" => "hook").increment(1);
            tracing::info!(store_id, ?message, "a validate-payload hook refused the connection");
            Some(text(StatusCode::BAD_REQUEST, format!("{message}\n")))
        }
        Ok(Err(failed)) => Some(text(StatusCode::INTERNAL_SERVER_ERROR, format!("{}\n", failed.message()))),
        Err(e) => Some(text(StatusCode::INTERNAL_SERVER_ERROR, format!("validate-payload hook: {e}\n"))),
    }
}

fn is_websocket_upgrade(req: &Request<Incoming>) -> bool {
    let has = |name, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(token)))
    };
    has(UPGRADE, "websocket") && has(CONNECTION, "upgrade")
}

async fn upgrade(
    req: Request<Incoming>,
    store_id: String,
    params: SyncParams,
    state: Arc<AppState>,
) -> Response<Full<Bytes>> {
    if !is_websocket_upgrade(&req) {
        return text(StatusCode::UPGRADE_REQUIRED, "Expected Upgrade: websocket (transport=ws)\n");
    }
    if let Some(expected) = &state.config.auth_token {
        if !token_matches(params.auth_token(), expected) {
            tracing::info!(store_id, "refused a connection: invalid auth token");
            return invalid_token();
        }
    }
    if let Some(refused) = validate_payload(&state, &store_id, params.payload_json(), &req).await {
        return refused;
    }
    let info = OpenInfo {
        protocol: Protocol::Livestore,
        authenticated: true,
        client_id: params.client_id.clone(),
        payload: params.payload_json(),
        headers: forwarded_headers(&req, &state.config.forward_headers),
    };
    accept_socket(req, store_id, info, state).await
}

/// Register the connection with its store's owner, then switch protocols.
async fn accept_socket(
    mut req: Request<Incoming>,
    store_id: String,
    info: OpenInfo,
    state: Arc<AppState>,
) -> Response<Full<Bytes>> {
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).map(|k| derive_accept_key(k.as_bytes())) else {
        return text(StatusCode::BAD_REQUEST, "Missing Sec-WebSocket-Key header\n");
    };
    if state.open_sockets.fetch_add(1, Ordering::AcqRel) >= state.config.max_connections {
        state.open_sockets.fetch_sub(1, Ordering::AcqRel);
        metrics::counter!(CONNECTIONS_REFUSED, "reason" => "max-connections").increment(1);
        return text(StatusCode::SERVICE_UNAVAILABLE, "Too many connections; try again later\n");
    }
    // Counted from here; the socket task (or the early returns below) give the slot back.
    let slot = SocketSlot(state.clone());
    let conn = state.next_conn.fetch_add(1, Ordering::Relaxed);
    let store_id: Arc<str> = store_id.into();
    let (out_tx, out_rx) = conn_queue(state.config.max_queue_bytes);
    let shard = state.shards.route(&store_id).clone();
    let out = out_tx.clone();
    match ask(&shard, |reply| ShardMsg::Open { conn, store_id: store_id.clone(), info, out, reply }).await {
        Some(Ok(())) => {}
        Some(Err(refusal)) => return text(StatusCode::BAD_REQUEST, format!("{refusal}\n")),
        None => return shutting_down(),
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    // tungstenite zero-fills its whole read buffer on every read: the 128 KiB default made each
    // small Ack cost a 128 KiB memset (30% of CPU with 1,000 live pullers) and 128 KiB of RSS
    // per idle socket. Larger frames still grow the buffer as needed.
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(state.config.max_frame_bytes))
        .max_frame_size(Some(state.config.max_frame_bytes));
    let shutdown = state.shutdown.clone();
    let limits = SocketLimits { send_timeout: state.config.send_timeout, idle_timeout: state.config.idle_timeout };
    state.tracker.spawn(async move {
        let _slot = slot;
        metrics::gauge!(OPEN_CONNECTIONS).increment(1.0);
        tracing::info!(conn, ?store_id, "connection opened");
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config)).await;
                run_socket(ws, conn, store_id.clone(), shard.clone(), out_tx, out_rx, shutdown, limits).await;
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
        metrics::gauge!(OPEN_CONNECTIONS).decrement(1.0);
        tracing::info!(conn, ?store_id, "connection closed");
        let _ = shard.send(ShardMsg::Closed { conn, store_id });
    });
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&key) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    res
}

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// One counted WebSocket; dropping it frees the slot.
struct SocketSlot(Arc<AppState>);

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.0.open_sockets.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Clone, Copy)]
struct SocketLimits {
    send_timeout: Duration,
    idle_timeout: Option<Duration>,
}

/// Pump one WebSocket: frames in → the store's shard; queued frames out → the socket.
#[allow(clippy::too_many_arguments)]
async fn run_socket(
    ws: Socket,
    conn: u64,
    store_id: Arc<str>,
    shard: mpsc::UnboundedSender<ShardMsg>,
    out_tx: ConnSender,
    mut out_rx: ConnReceiver,
    mut shutdown: watch::Receiver<bool>,
    limits: SocketLimits,
) {
    let (mut sink, mut stream) = ws.split();
    let writer = async move {
        while let Some(out) = out_rx.recv().await {
            let (msg, last) = match out {
                Outgoing::Text(t) => (Message::text(t), false),
                Outgoing::Close(code, reason) => {
                    tracing::info!(conn, code, reason = %reason, "closing a connection");
                    (Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() })), true)
                }
            };
            // A client that does not read must not hold the writer (and its memory) forever.
            match tokio::time::timeout(limits.send_timeout, sink.send(msg)).await {
                Ok(Ok(())) if !last => {}
                Ok(Ok(())) => break,
                Ok(Err(_)) => return,
                Err(_) => {
                    tracing::info!(conn, "dropping a connection: a socket write timed out");
                    return;
                }
            }
        }
        let _ = tokio::time::timeout(limits.send_timeout, sink.close()).await;
    };
    let store_for_reader = store_id.clone();
    let shard_for_reader = shard.clone();
    let reader = async move {
        let store_id = store_for_reader;
        let shard = shard_for_reader;
        let idle = limits.idle_timeout.unwrap_or(Duration::from_secs(365 * 24 * 3600));
        let idle_timer = tokio::time::sleep(idle);
        tokio::pin!(idle_timer);
        loop {
            tokio::select! {
                msg = stream.next() => {
                    idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
                    match msg {
                        Some(Ok(Message::Text(t))) => {
                            tracing::debug!(conn, frame = %redact_tokens(t.as_str()), "frame in");
                            let frame = ShardMsg::Frame { conn, store_id: store_id.clone(), text: t.as_str().to_owned() };
                            if shard.send(frame).is_err() { break; }
                        }
                        Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                            Ok(text) => { let _ = shard.send(ShardMsg::Frame { conn, store_id: store_id.clone(), text }); }
                            Err(_) => { out_tx.close(1003, "binary frames must be UTF-8 JSON"); break; }
                        },
                        Some(Ok(Message::Close(_))) | None => break,
                        Some(Ok(_)) => {}
                        Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(e))) => {
                            tracing::info!(conn, ?store_id, error = %e, "closing a connection: frame too large");
                            out_tx.kill(1009, format!("frame too large: {e}"));
                            break;
                        }
                        Some(Err(e)) => { tracing::debug!(conn, error = %e, "websocket read error"); break; }
                    }
                }
                _ = &mut idle_timer => {
                    out_tx.close(1001, format!("idle for {} s", idle.as_secs()));
                    break;
                }
                _ = shutdown.changed() => {
                    out_tx.close(1001, "server shutting down");
                    break;
                }
            }
        }
    };
    tokio::pin!(writer);
    tokio::pin!(reader);
    tokio::select! {
        _ = &mut writer => {}
        _ = &mut reader => {
            // The shard drops its sender on Closed; then the writer drains and ends.
            let _ = shard.send(ShardMsg::Closed { conn, store_id: store_id.clone() });
            let _ = tokio::time::timeout(limits.send_timeout, &mut writer).await;
        }
    }
    let _ = shard.send(ShardMsg::Closed { conn, store_id });
}

/// Frame text for debug logs, with every `"authToken":"…"` value masked.
pub fn redact_tokens(text: &str) -> String {
    const KEY: &str = "\"authToken\":\"";
    let mut out = String::with_capacity(text.len().min(2048));
    let mut rest = text;
    while let Some(i) = rest.find(KEY) {
        out.push_str(&rest[..i + KEY.len()]);
        out.push_str("***");
        rest = &rest[i + KEY.len()..];
        rest = rest.find('"').map_or("", |j| &rest[j..]);
    }
    out.push_str(rest);
    if out.len() > 2048 {
        let mut cut = 2048;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_redacted_from_logged_frames() {
        let f = r#"{"payload":{"authToken":"s3cret"},"x":1}"#;
        assert_eq!(super::redact_tokens(f), r#"{"payload":{"authToken":"***"},"x":1}"#);
        assert!(!super::redact_tokens(&format!("{f}{f}")).contains("s3cret"));
    }
}
