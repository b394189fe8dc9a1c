//! The server's lifecycle: load the component and hooks, start the store shards, accept TCP
//! connections and hand each request to the edge (`edge/`), and shut down gracefully.

use crate::activity::Activity;
use crate::admin_tail::TailHub;
use crate::conn_queue::QueueBudget;
use crate::data_lock::DataDirLock;
use crate::edge::{self, AddressSlots, EdgeState, PendingConnections};
use crate::hooks::Hooks;
use crate::lock::lock;
use crate::runtime::SyncRuntime;
use crate::shard::Shards;
use crate::telemetry;
use crate::telemetry::CONNECTIONS_REFUSED;
use anyhow::{Context, Result};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

pub use crate::config::ServerConfig;

/// A started server; dropping it does not stop it, call [`RunningServer::shutdown`].
pub struct RunningServer {
    local_addr: SocketAddr,
    /// Held until the server has stopped (released with the process otherwise).
    _data_lock: DataDirLock,
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
    // The port first: a server that cannot listen must not leave a data directory behind.
    let listener = TcpListener::bind((config.host.as_str(), config.port))
        .await
        .with_context(|| format!("listening on {}:{}", config.host, config.port))?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let data_lock = DataDirLock::acquire(&config.data_dir, "serve")
        .map_err(|e| anyhow::anyhow!("{e:#}; one server per data directory"))?;
    remove_stale_import_spools(&config.data_dir);
    let cache_dir = config.data_dir.join("cache");
    let rt = tokio::task::spawn_blocking(move || runtime(cache_dir)).await??;
    let shard_count = if config.shards == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
    } else {
        config.shards
    };
    let hook_settings = config.hooks.clone();
    let hooks = tokio::task::spawn_blocking(move || Hooks::load(&hook_settings)).await??;
    let tails = Arc::new(TailHub::default());
    let node = crate::peer_notify::new_node_id();
    // Opening storage blocks (and the Postgres client runs its own runtime): off the async threads.
    let shards = {
        let (engine, config, hooks, tails) = (config.engine(&node), config.clone(), hooks.clone(), tails.clone());
        tokio::task::spawn_blocking(move || Shards::start(rt, engine, shard_count, &config, hooks, tails)).await??
    };
    let shards = Arc::new(shards);
    let local_addr = listener.local_addr()?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = Arc::new(EdgeState {
        hooks,
        shards: shards.clone(),
        next_conn: AtomicU64::new(1),
        open_sockets: Arc::new(AtomicUsize::new(0)),
        unauthenticated: Arc::new(AtomicUsize::new(0)),
        pending: PendingConnections::new(config.max_pending_connections),
        pending_per_client: AddressSlots::new(config.max_connections_per_client),
        sockets_per_client: AddressSlots::new(config.max_connections_per_client),
        queue_budget: QueueBudget::new(config.max_total_queue_bytes),
        config,
        shutdown: shutdown_rx.clone(),
        tracker: TaskTracker::new(),
        health: tokio::sync::Mutex::new(None),
        tails,
        activity: Arc::new(Activity::default()),
        sessions: edge::AdminSessions::default(),
        started: std::time::Instant::now(),
    });
    if state.config.admin_secret.is_some() {
        tokio::spawn(sample_activity(state.activity.clone(), shutdown_rx.clone()));
    }
    if let Some(pg) = state.config.postgres.clone() {
        tokio::spawn(crate::peer_notify::listen(pg, node, shards.clone(), shutdown_rx.clone()));
    }
    let task = tokio::spawn(accept_loop(listener, state, shards, shutdown_rx));
    Ok(RunningServer { local_addr, _data_lock: data_lock, shutdown: shutdown_tx, task })
}

/// Import bodies a previous run was spooling when it died (`edge/admin/stream.rs`): nothing
/// reads them any more.
fn remove_stale_import_spools(data_dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("import-") && name.ends_with(".jsonl.part") {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(file = name, error = %e, "could not remove a stale import spool");
            }
        }
    }
}

/// The console's activity chart: a sample of the counters every few seconds until shutdown.
async fn sample_activity(activity: Arc<Activity>, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(crate::activity::SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => activity.sample(&telemetry::render()),
            _ = shutdown.changed() => return,
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<EdgeState>,
    shards: Arc<Shards>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let state2 = state.clone();
                    state.tracker.spawn(serve_connection(tcp, peer, state2));
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

/// One TCP connection: HTTP/1.1 requests (and their upgrades) until it closes. Until its
/// first request head is complete it counts as pending (`edge/pending.rs`), per client address
/// too unless the peer is a trusted proxy (whose clients are told apart at admission).
async fn serve_connection(tcp: tokio::net::TcpStream, peer: SocketAddr, state: Arc<EdgeState>) {
    let per_client = if state.config.trusted_proxies.contains(&peer.ip()) {
        None
    } else {
        match state.pending_per_client.take(peer.ip()) {
            Some(slot) => Some(slot),
            None => {
                metrics::counter!(CONNECTIONS_REFUSED, "reason" => "per-client").increment(1);
                return;
            }
        }
    };
    let pending = state.pending.register();
    let evicted = pending.evicted.clone();
    // Released by the first request to arrive.
    let waiting = Arc::new(Mutex::new(Some((pending, per_client))));
    let waiting_for_evict = waiting.clone();
    let mut shutdown = state.shutdown.clone();
    let state2 = state.clone();
    let service = service_fn(move |req| {
        lock(&waiting).take();
        edge::handle(req, peer, state2.clone())
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.header_timeout)
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(conn);
    let evicted = evicted.cancelled();
    tokio::pin!(evicted);
    // An eviction that lands after the request head arrived (the service already took the
    // connection out of the waiting set) is ignored: that request is served.
    let mut still_waiting = true;
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res { tracing::debug!(error = %e, "http connection ended with an error"); }
                break;
            }
            _ = &mut evicted, if still_waiting => {
                if lock(&waiting_for_evict).is_some() {
                    tracing::debug!(%peer, "closing a connection that sent no request: too many connections are waiting");
                    break;
                }
                still_waiting = false;
            }
            _ = shutdown.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
                break;
            }
        }
    }
}
