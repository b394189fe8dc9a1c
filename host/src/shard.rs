//! Store owners. Each shard is one thread with its own SQLite connection; it owns the
//! component instances of the stores hashed to it and handles their messages in arrival
//! order, so every store has exactly one serial owner (the Durable Object model).

use crate::config::ServerConfig;
use crate::hooks::Hooks;
use crate::lock::lock;
use crate::runtime::{ConnSender, OpenInfo, ShardIo, StoreInstance, SyncRuntime};
use crate::storage::Migrate;
use crate::store_admin::{import_lines, ExportedEvent, ImportBackendId};
use crate::telemetry::{ACTIVE_STORES, FRAME_HANDLE, FRAME_WAIT, STORAGE_COMMIT};
use anyhow::{anyhow, Context, Result};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

/// The most frames whose appends share one commit, and the longest such a group stays open
/// (the first frame's answer waits for the commit).
const GROUP_FRAMES: usize = 64;
const GROUP_TIME: Duration = Duration::from_millis(2);

/// The shard's frame histograms, registered once.
struct FrameTimers {
    wait: metrics::Histogram,
    handle: metrics::Histogram,
    commit: metrics::Histogram,
}

pub enum ShardMsg {
    Open {
        conn: u64,
        store_id: Arc<str>,
        info: OpenInfo,
        /// What the admin API shows about the connection.
        meta: ConnMeta,
        out: ConnSender,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// One LiveStore HTTP-transport request; the reply is the response body.
    Http {
        store_id: Arc<str>,
        payload: Option<String>,
        body: String,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Operator action on one store, run by its owner.
    Admin {
        store_id: Arc<str>,
        action: AdminAction,
        /// The answer as JSON text (event args stay byte for byte as they were pushed).
        reply: oneshot::Sender<Result<String, AdminError>>,
    },
    /// Replace a store's log with a spooled JSON-lines file (the admin API's import).
    Import {
        store_id: Arc<str>,
        file: PathBuf,
        replace: bool,
        backend: ImportBackendId,
        reply: oneshot::Sender<Result<String, AdminError>>,
    },
    /// Is storage writable?
    Health {
        reply: oneshot::Sender<Result<(), String>>,
    },
    Frame {
        conn: u64,
        store_id: Arc<str>,
        text: String,
        /// Held until the frame is handled (the connection's frames-in-flight budget).
        permit: OwnedSemaphorePermit,
        /// When the socket read it (the frame-wait metric).
        received: Instant,
    },
    Closed {
        conn: u64,
        store_id: Arc<str>,
    },
    /// Another node committed to the store up to `head` (Postgres `NOTIFY`).
    LogAdvanced {
        store_id: Arc<str>,
        head: i64,
    },
    /// Another node reset or replaced the store: drop the instance (its cached head and backend
    /// id are wrong) and close its sockets, as a reset here does.
    ChangedElsewhere {
        store_id: Arc<str>,
    },
    /// Notifications may have been missed (the listening connection dropped): bring every open
    /// store up to its stored head.
    Resync,
    /// Finish what is queued, then stop.
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    Info,
    Reset,
    /// Every store (any shard can answer: they share one database).
    List,
    /// A page of the store's events after a seqNum.
    Events {
        after: i64,
        limit: u32,
    },
    /// The store's open connections.
    Connections,
}

/// A page of a store's events (`AdminAction::Events`).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EventPage<'a> {
    store_id: &'a str,
    head: i64,
    /// An export reading page after page notices a reset in between.
    backend_id: &'a str,
    after: i64,
    /// The `after` of the next page; none when this one is not full.
    next: Option<i64>,
    events: Vec<ExportedEvent>,
}

/// One open connection as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnMeta {
    pub client_id: Option<String>,
    /// `livestore` or `simple`.
    pub protocol: &'static str,
    pub transport: &'static str,
    /// The client's address (the proxy's client address with `--trusted-proxy`).
    pub peer: String,
    /// Milliseconds since the Unix epoch.
    pub connected_at: u64,
}

/// Why an admin action failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    NotFound(String),
    /// The request's data was refused (an import that does not form a valid log).
    Refused(String),
    Failed(String),
}

pub struct Shards {
    senders: Vec<mpsc::UnboundedSender<ShardMsg>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shards {
    /// `count` shard threads sharing `config`'s limits (open stores and the idle cache are
    /// split evenly between them).
    pub fn start(
        runtime: Arc<SyncRuntime>,
        engine: crate::storage::Engine,
        count: usize,
        config: &ServerConfig,
        hooks: Option<Arc<Hooks>>,
        tails: Arc<crate::admin_tail::TailHub>,
    ) -> Result<Shards> {
        let count = count.max(1);
        let max_open = config.max_open_stores.div_ceil(count).max(1);
        let idle_cache = config.idle_store_cache.div_ceil(count);
        let mut senders = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for index in 0..count {
            // The first opening migrates an older SQLite layout (the server holds the data
            // directory) or creates Postgres' tables.
            let db = crate::storage::open(&engine, Migrate::Yes)?;
            let io = Arc::new(ShardIo {
                db: Mutex::new(db),
                conns: Mutex::new(HashMap::new()),
                auth_token: config.auth_token.clone(),
                max_push_events: config.max_push_events,
                hooks: hooks.clone(),
                tails: tails.clone(),
                held: Mutex::new(None),
            });
            let (tx, rx) = mpsc::unbounded_channel();
            let runtime = runtime.clone();
            let thread = std::thread::Builder::new()
                .name(format!("store-shard-{index}"))
                .spawn(move || ShardLoop { runtime, io, stores: HashMap::new(), max_open, idle_cache }.run(rx))
                .context("spawning a store shard thread")?;
            senders.push(tx);
            threads.push(thread);
        }
        Ok(Shards { senders, threads: Mutex::new(threads) })
    }

    /// Send every shard a message.
    pub fn broadcast(&self, msg: impl Fn() -> ShardMsg) {
        for tx in &self.senders {
            let _ = tx.send(msg());
        }
    }

    /// Any shard (for store-independent requests such as health checks).
    pub fn any(&self) -> &mpsc::UnboundedSender<ShardMsg> {
        &self.senders[0]
    }

    /// The serial owner of `store_id`.
    pub fn route(&self, store_id: &str) -> &mpsc::UnboundedSender<ShardMsg> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        store_id.hash(&mut h);
        &self.senders[(h.finish() % self.senders.len() as u64) as usize]
    }

    /// Process everything already queued, then stop the shard threads.
    pub fn stop(&self) {
        for tx in &self.senders {
            let _ = tx.send(ShardMsg::Stop);
        }
        let threads = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            if t.join().is_err() {
                tracing::error!("a store shard thread panicked");
            }
        }
    }
}

struct OpenStore {
    instance: StoreInstance,
    conns: HashMap<u64, ConnMeta>,
}

struct ShardLoop {
    runtime: Arc<SyncRuntime>,
    io: Arc<ShardIo>,
    stores: HashMap<Arc<str>, OpenStore>,
    /// Store instances this shard may hold.
    max_open: usize,
    /// Idle instances (no connections) this shard keeps warm.
    idle_cache: usize,
}

impl ShardLoop {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<ShardMsg>) {
        // Registered once: a macro call per frame would look the series up every time.
        let timers = FrameTimers {
            wait: metrics::histogram!(FRAME_WAIT),
            handle: metrics::histogram!(FRAME_HANDLE),
            commit: metrics::histogram!(STORAGE_COMMIT),
        };
        let mut next = rx.blocking_recv();
        while let Some(msg) = next.take() {
            match msg {
                ShardMsg::Frame { .. } => next = self.frame_group(msg, &mut rx, &timers),
                ShardMsg::Stop => break,
                other => self.handle(other),
            }
            if next.is_none() {
                next = rx.blocking_recv();
            }
        }
    }

    /// Handle `first` and the frames queued behind it as one group: their appends share one
    /// commit, and what they send waits for it (so under load a store's push costs a row
    /// insert, not a transaction). A group ends when the queue is empty, at a message that is
    /// not a frame (returned, to be handled next), or at [`GROUP_FRAMES`] / [`GROUP_TIME`]:
    /// the first frame's answer waits for the group.
    fn frame_group(
        &mut self,
        first: ShardMsg,
        rx: &mut mpsc::UnboundedReceiver<ShardMsg>,
        timers: &FrameTimers,
    ) -> Option<ShardMsg> {
        // A hook may run for up to its deadline inside a frame; a group holding the file's
        // write turn meanwhile would stall every other shard's writes, so with hooks each frame
        // commits alone.
        let grouped = self.io.hooks.is_none() && lock(&self.io.db).begin_group();
        if grouped {
            self.io.hold_output();
        }
        let started = Instant::now();
        let mut handled_stores: Vec<Arc<str>> = Vec::new();
        let mut msg = first;
        let mut frames = 0;
        let leftover = loop {
            if let ShardMsg::Frame { conn, store_id, text, permit: _permit, received } = msg {
                if self.frame(conn, &store_id, &text, received, timers) && !handled_stores.contains(&store_id) {
                    handled_stores.push(store_id);
                }
            }
            frames += 1;
            if !grouped || frames >= GROUP_FRAMES || started.elapsed() >= GROUP_TIME {
                break None;
            }
            match rx.try_recv() {
                Ok(frame @ ShardMsg::Frame { .. }) => msg = frame,
                Ok(other) => break Some(other),
                Err(_) => break None,
            }
        };
        if grouped {
            self.end_group(&handled_stores, timers);
        }
        leftover
    }

    /// One client frame through its store's instance; false if the store or connection is gone.
    fn frame(&mut self, conn: u64, store_id: &Arc<str>, text: &str, received: Instant, timers: &FrameTimers) -> bool {
        let Some(store) = self.stores.get_mut(store_id) else {
            return false;
        };
        if !store.conns.contains_key(&conn) {
            return false;
        }
        let started = Instant::now();
        timers.wait.record(started.duration_since(received));
        let handled = store.instance.frame(conn, text);
        timers.handle.record(started.elapsed());
        let stale = store.instance.changed_elsewhere();
        if let Err(e) = handled {
            self.fail_store(store_id, e);
        } else if stale {
            self.drop_store(store_id, 1012, "store was reset on another node");
        }
        true
    }

    /// Commit a group; then send what it held. If the commit fails nothing of the group is
    /// stored and nothing it said is sent: the instances of its stores believe otherwise, so
    /// they are dropped and their clients reconnect and re-sync.
    fn end_group(&mut self, stores: &[Arc<str>], timers: &FrameTimers) {
        let started = Instant::now();
        let committed = lock(&self.io.db).end_group();
        match committed {
            Ok(0) => self.io.release_output(),
            Ok(_) => {
                timers.commit.record(started.elapsed());
                self.io.release_output();
            }
            Err(e) => {
                self.io.discard_output();
                tracing::error!(error = %format!("{e:#}"), stores = stores.len(), "storage failed to commit a group of pushes; closing those stores' connections");
                for store_id in stores {
                    self.drop_store(store_id, 1011, "storage failed; reconnect and sync again");
                }
            }
        }
    }

    fn handle(&mut self, msg: ShardMsg) {
        match msg {
            ShardMsg::Open { conn, store_id, info, meta, out, reply } => {
                let result = self.open(conn, &store_id, info, meta, out);
                let opened = result.is_ok();
                // The request gave up waiting (its client hung up): nobody will send Closed.
                if reply.send(result).is_err() && opened {
                    self.close(conn, &store_id);
                }
            }
            ShardMsg::Http { store_id, payload, body, reply } => {
                let result = self.http(&store_id, payload.as_deref(), &body);
                let _ = reply.send(result);
            }
            ShardMsg::Admin { store_id, action, reply } => {
                let _ = reply.send(self.admin(&store_id, action));
            }
            ShardMsg::Import { store_id, file, replace, backend, reply } => {
                let _ = reply.send(self.import(&store_id, &file, replace, backend));
            }
            ShardMsg::Health { reply } => {
                let result = lock(&self.io.db).probe_write();
                let _ = reply.send(result.map_err(|e| format!("{e:#}")));
            }
            ShardMsg::Closed { conn, store_id } => self.close(conn, &store_id),
            ShardMsg::LogAdvanced { store_id, head } => self.log_advanced(&store_id, head),
            ShardMsg::ChangedElsewhere { store_id } => {
                self.drop_store(&store_id, 1012, "store was reset on another node");
                let stored = lock(&self.io.db).store_context(&store_id);
                if let Ok(Some((_, backend_id))) = stored {
                    self.io.tails.reset(&store_id, &backend_id);
                }
            }
            ShardMsg::Resync => self.resync(),
            // Handled by the loop.
            ShardMsg::Frame { .. } | ShardMsg::Stop => {}
        }
    }

    /// The store's instance, created on first use.
    fn store(&mut self, store_id: &Arc<str>) -> Result<&mut OpenStore, String> {
        if !self.stores.contains_key(store_id) {
            if self.stores.len() >= self.max_open || self.idle_count() >= self.idle_cache {
                self.evict_idle();
            }
            if self.stores.len() >= self.max_open {
                return Err(format!("too many stores open at once ({}); try again later", self.stores.len()));
            }
            let instance = self.runtime.instantiate(self.io.clone()).map_err(|e| format!("{e:#}"))?;
            self.stores.insert(store_id.clone(), OpenStore { instance, conns: HashMap::new() });
            metrics::gauge!(ACTIVE_STORES).increment(1.0);
        }
        self.stores.get_mut(store_id).ok_or_else(|| "store vanished".to_string())
    }

    fn http(&mut self, store_id: &Arc<str>, payload: Option<&str>, body: &str) -> Result<String, String> {
        let store = self.store(store_id)?;
        match store.instance.http_request(store_id, payload, body) {
            Ok(response) => {
                if store.instance.changed_elsewhere() {
                    self.drop_store(store_id, 1012, "store was reset on another node");
                }
                Ok(response)
            }
            Err(trap) => {
                let message = format!("{trap:#}");
                self.fail_store(store_id, trap);
                Err(format!("the sync component failed: {message}"))
            }
        }
    }

    fn open(
        &mut self,
        conn: u64,
        store_id: &Arc<str>,
        info: OpenInfo,
        meta: ConnMeta,
        out: ConnSender,
    ) -> Result<(), String> {
        self.store(store_id)?;
        lock(&self.io.conns).insert(conn, out);
        let Some(store) = self.stores.get_mut(store_id) else {
            return Err("store vanished".into());
        };
        let outcome = store.instance.opened(conn, store_id, info);
        match outcome {
            Ok(Ok(())) => {
                store.conns.insert(conn, meta);
                Ok(())
            }
            Ok(Err(refusal)) => {
                self.forget_conn(conn);
                Err(refusal)
            }
            Err(trap) => {
                self.forget_conn(conn);
                let message = format!("{trap:#}");
                self.fail_store(store_id, trap);
                Err(format!("the sync component failed: {message}"))
            }
        }
    }

    fn admin(&mut self, store_id: &Arc<str>, action: AdminAction) -> Result<String, AdminError> {
        let failed = |e: anyhow::Error| AdminError::Failed(format!("{e:#}"));
        let mut db = lock(&self.io.db);
        if action == AdminAction::List {
            let stores = db.list_stores().map_err(failed)?;
            return serde_json::to_string(&stores).map_err(|e| failed(e.into()));
        }
        // Head and backend id only: counting the log here would cost every page of an export
        // a scan of the whole table.
        let Some((head, backend_id)) = db.store_context(store_id).map_err(failed)? else {
            return Err(AdminError::NotFound(format!("store {store_id:?} does not exist")));
        };
        match action {
            AdminAction::Info | AdminAction::List => {
                let info = db.store_info(store_id).map_err(failed)?;
                serde_json::to_string(&info).map_err(|e| failed(e.into()))
            }
            AdminAction::Events { after, limit } => {
                let rows = db.read_after(store_id, after, limit).map_err(failed)?;
                let events = rows
                    .into_iter()
                    .map(ExportedEvent::from_row)
                    .collect::<anyhow::Result<Vec<_>>>()
                    .map_err(failed)?;
                // A full page may have more after it.
                let next = (events.len() == limit as usize).then(|| events.last().map(|e| e.seq_num)).flatten();
                let page = EventPage { store_id, head, backend_id: &backend_id, after, next, events };
                serde_json::to_string(&page).map_err(|e| failed(e.into()))
            }
            AdminAction::Connections => {
                let mut conns = Vec::new();
                if let Some(store) = self.stores.get_mut(store_id) {
                    let mut ids: Vec<u64> = store.conns.keys().copied().collect();
                    ids.sort_unstable();
                    for id in ids {
                        let Some(meta) = store.conns.get(&id) else { continue };
                        let Ok(mut v) = serde_json::to_value(meta) else { continue };
                        v["conn"] = serde_json::json!(id);
                        // A trap here is the component's bug; the count is just left out.
                        v["openPulls"] = serde_json::json!(store.instance.open_pulls(id).ok().flatten());
                        conns.push(v);
                    }
                }
                Ok(serde_json::json!({ "storeId": &**store_id, "connections": conns }).to_string())
            }
            AdminAction::Reset => {
                let backend_id = nanoid::nanoid!();
                let removed = db.reset(store_id, &backend_id).map_err(failed)?;
                drop(db);
                self.io.tails.reset(store_id, &backend_id);
                // The instance caches head and backend id: drop it and disconnect its clients,
                // who reconnect, get BackendIdMismatchError and re-sync.
                self.drop_store(store_id, 1012, "store was reset");
                tracing::info!(store_id = &**store_id, removed, backend_id, "store reset");
                Ok(serde_json::json!({ "storeId": &**store_id, "removedEvents": removed, "backendId": backend_id })
                    .to_string())
            }
        }
    }

    fn import(
        &mut self,
        store_id: &Arc<str>,
        file: &std::path::Path,
        replace: bool,
        backend: ImportBackendId,
    ) -> Result<String, AdminError> {
        let reader = std::fs::File::open(file)
            .map(std::io::BufReader::new)
            .map_err(|e| AdminError::Failed(format!("opening the spooled import {}: {e}", file.display())))?;
        let imported = import_lines(lock(&self.io.db).as_mut(), store_id, reader, replace, backend, |_, _| {});
        let imported = imported.map_err(|e| {
            // Storage failing is the server's fault; anything else is the file's.
            if e.downcast_ref::<rusqlite::Error>().is_some() || e.downcast_ref::<postgres::Error>().is_some() {
                AdminError::Failed(format!("{e:#}"))
            } else {
                AdminError::Refused(format!("{e:#}"))
            }
        })?;
        // As after a reset: the instance caches head and backend id, and clients must re-sync.
        self.drop_store(store_id, 1012, "store was imported");
        self.io.tails.reset(store_id, &imported.backend_id);
        tracing::info!(
            store_id = &**store_id,
            events = imported.events,
            backend_id = imported.backend_id,
            "store imported"
        );
        Ok(serde_json::json!({
            "storeId": &**store_id,
            "importedEvents": imported.events,
            "backendId": imported.backend_id,
            "keptBackendId": imported.kept_backend_id,
        })
        .to_string())
    }

    fn close(&mut self, conn: u64, store_id: &Arc<str>) {
        self.forget_conn(conn);
        let Some(store) = self.stores.get_mut(store_id) else {
            return;
        };
        if store.conns.remove(&conn).is_none() {
            return;
        }
        if let Err(e) = store.instance.closed(conn) {
            self.fail_store(store_id, e);
            return;
        }
        if store.conns.is_empty() && self.idle_count() > self.idle_cache {
            self.evict_idle();
        }
    }

    fn forget_conn(&self, conn: u64) {
        lock(&self.io.conns).remove(&conn);
    }

    fn idle_count(&self) -> usize {
        self.stores.values().filter(|s| s.conns.is_empty()).count()
    }

    /// Stores without connections keep their instance (HTTP polling stays cheap), but an idle
    /// instance costs ~200 KiB (touched linear memory and wasmtime state): past `idle_cache`
    /// of them, or when the shard is full, idle ones give their instance back and the next
    /// request reopens them from storage.
    fn evict_idle(&mut self) {
        let before = self.stores.len();
        self.stores.retain(|_, s| !s.conns.is_empty());
        metrics::gauge!(ACTIVE_STORES).decrement((before - self.stores.len()) as f64);
    }

    /// Drop a store's instance and close its connections now with `code`.
    fn drop_store(&mut self, store_id: &Arc<str>, code: u16, reason: &str) {
        let Some(store) = self.stores.remove(store_id) else {
            return;
        };
        metrics::gauge!(ACTIVE_STORES).decrement(1.0);
        let mut conns = lock(&self.io.conns);
        for conn in store.conns.into_keys() {
            if let Some(tx) = conns.remove(&conn) {
                tx.kill(code, reason);
            }
        }
    }

    fn log_advanced(&mut self, store_id: &Arc<str>, head: i64) {
        let Some(store) = self.stores.get_mut(store_id) else { return };
        if let Err(e) = store.instance.log_advanced(store_id, head) {
            self.fail_store(store_id, e);
        }
    }

    fn resync(&mut self) {
        let ids: Vec<Arc<str>> = self.stores.keys().cloned().collect();
        for store_id in ids {
            let stored = lock(&self.io.db).store_context(&store_id);
            let Some(store) = self.stores.get(&store_id) else { continue };
            let (loaded, known) = (store.instance.backend_id().map(str::to_string), store.instance.known_head());
            match stored {
                // Reset, or replaced under the same backend id (the log went backwards).
                Ok(Some((head, backend))) if loaded.is_some_and(|l| l != backend) || head < known => {
                    self.drop_store(&store_id, 1012, "store was reset on another node");
                }
                Ok(Some((head, _))) => self.log_advanced(&store_id, head),
                // Gone (reset and removed elsewhere): its clients must start over.
                Ok(None) => self.drop_store(&store_id, 1012, "store was removed"),
                Err(e) => tracing::warn!(store_id = &*store_id, error = %format!("{e:#}"), "re-syncing a store failed"),
            }
        }
    }

    /// The component trapped: its state is gone. Close the store's connections (clients
    /// reconnect and resync from storage) and drop the instance.
    fn fail_store(&mut self, store_id: &Arc<str>, error: anyhow::Error) {
        tracing::error!(store_id = &**store_id, error = %anyhow!(error), "sync component trapped; closing the store's connections");
        self.drop_store(store_id, 1011, "internal error in the sync component");
    }
}
