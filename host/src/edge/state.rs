//! What every request handler shares, and how a handler asks a store's owner.

use super::client_addr::AddressSlots;
use super::error::EdgeError;
use super::pending::PendingConnections;
use crate::config::ServerConfig;
use crate::conn_queue::QueueBudget;
use crate::hooks::Hooks;
use crate::shard::{ShardMsg, Shards};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::Response;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::task::TaskTracker;

/// Why a streamed body stopped short: the connection is then cut, so the client sees an
/// incomplete answer instead of a clean end.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;
/// A response body: whole (most answers) or streamed (exports, live tails).
pub type Body = UnsyncBoxBody<Bytes, BodyError>;
pub type HttpResponse = Response<Body>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// What every request handler shares.
pub(crate) struct EdgeState {
    pub config: ServerConfig,
    pub hooks: Option<Arc<Hooks>>,
    pub shards: Arc<Shards>,
    pub next_conn: AtomicU64,
    /// Open WebSockets (`--max-connections`).
    pub open_sockets: Arc<AtomicUsize>,
    /// Simple-protocol sockets waiting to authenticate (`--max-unauthenticated`).
    pub unauthenticated: Arc<AtomicUsize>,
    /// Connections without a complete request yet (`--max-pending-connections`).
    pub pending: Arc<PendingConnections>,
    /// Per client address: connections without a complete request, and WebSockets.
    pub pending_per_client: Arc<AddressSlots>,
    pub sockets_per_client: Arc<AddressSlots>,
    /// Bytes queued for all connections (`--max-total-queue-bytes`).
    pub queue_budget: Arc<QueueBudget>,
    pub shutdown: watch::Receiver<bool>,
    /// Every connection task, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// The last storage probe of `/health` and when it ran (`edge::health`).
    pub health: tokio::sync::Mutex<Option<(Instant, Result<(), EdgeError>)>>,
    /// Admin followers of committed batches (`admin/stream.rs`).
    pub tails: Arc<crate::admin_tail::TailHub>,
    /// The console's activity chart.
    pub activity: Arc<crate::activity::Activity>,
    /// Console sign-ins.
    pub sessions: super::admin::Sessions,
    pub started: Instant,
}

pub fn send<T>(
    shard: &mpsc::UnboundedSender<ShardMsg>,
    msg: impl FnOnce(oneshot::Sender<T>) -> ShardMsg,
) -> Option<oneshot::Receiver<T>> {
    let (tx, rx) = oneshot::channel();
    shard.send(msg(tx)).ok()?;
    Some(rx)
}

/// Send a request to a store owner and wait for its reply; `None` when the server is stopping.
pub async fn ask<T>(
    shard: &mpsc::UnboundedSender<ShardMsg>,
    msg: impl FnOnce(oneshot::Sender<T>) -> ShardMsg,
) -> Result<T, EdgeError> {
    let rx = send(shard, msg).ok_or_else(EdgeError::shutting_down)?;
    rx.await.map_err(|_| EdgeError::shutting_down())
}
