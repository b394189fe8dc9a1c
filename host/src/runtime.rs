//! The embedded sync component under wasmtime: engine, compiled component (cached on disk),
//! linker with the host's imports, and per-store instances.

use crate::storage::{Db, Row};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({ world: "sync-component", path: "../wit" });

use crate::hooks::{HookContext, HookEvent, HookFn, HookPullRequest, Hooks};
use livestore::sync::hooks::HookKinds;
use livestore::sync::types::{EventRow, LogLevel, StoreState, TelemetryEvent};

pub use livestore::sync::types::Protocol;

/// The component's bytes, built from guest/ by build.rs.
pub static GUEST_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/guest.wasm"));
/// SHA-256 of [`GUEST_WASM`]; the Cloudflare build checks it to ship the same component.
pub const GUEST_SHA256: &str = include_str!(concat!(env!("OUT_DIR"), "/guest.sha256"));

pub use crate::conn_queue::{ConnSender, Outgoing};

/// What one shard's instances share: its SQLite connection, its connections' queues and
/// the configured auth token.
pub struct ShardIo {
    pub db: Mutex<Db>,
    pub conns: Mutex<HashMap<u64, ConnSender>>,
    pub auth_token: Option<String>,
    pub max_push_events: u32,
    pub hooks: Option<Arc<Hooks>>,
}

/// The data of one store's wasmtime `Store`.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    io: Arc<ShardIo>,
    /// What hooks learn about each connection (kept from `opened`).
    hook_contexts: HashMap<u64, HookContext>,
    /// The HTTP-transport request being handled (conn 0).
    http_context: Option<HookContext>,
}

impl HostState {
    /// What hooks learn about `conn`; without a URL `clientId`, the batch's client is the one.
    fn hook_context(&self, conn: u64, batch: &[EventRow]) -> HookContext {
        let ctx = if conn == 0 { self.http_context.as_ref() } else { self.hook_contexts.get(&conn) };
        let mut ctx = ctx.cloned().unwrap_or_default();
        if ctx.client_id.is_none() {
            ctx.client_id = batch.first().map(|e| e.client_id.clone());
        }
        ctx
    }
}

fn hook_event(r: &EventRow) -> HookEvent {
    HookEvent {
        seq_num: r.seq_num,
        parent_seq_num: r.parent_seq_num,
        name: r.name.clone(),
        args: r.args.clone(),
        client_id: r.client_id.clone(),
        session_id: r.session_id.clone(),
    }
}

impl livestore::sync::hooks::Host for HostState {
    fn loaded(&mut self) -> HookKinds {
        let mut kinds = HookKinds::empty();
        if let Some(h) = &self.io.hooks {
            if h.has(HookFn::OnPush) {
                kinds |= HookKinds::ON_PUSH;
            }
            if h.has(HookFn::OnPull) {
                kinds |= HookKinds::ON_PULL;
            }
            if h.has(HookFn::AfterPush) {
                kinds |= HookKinds::AFTER_PUSH;
            }
        }
        kinds
    }

    fn on_push(&mut self, conn: u64, batch: Vec<EventRow>) -> Result<(), String> {
        let Some(hooks) = self.io.hooks.clone() else { return Ok(()) };
        let ctx = self.hook_context(conn, &batch);
        let events: Vec<HookEvent> = batch.iter().map(hook_event).collect();
        hooks.on_push(&ctx, &events).map_err(|e| e.message())
    }

    fn on_pull(&mut self, conn: u64, cursor: i64, live: bool) -> Result<(), String> {
        let Some(hooks) = self.io.hooks.clone() else { return Ok(()) };
        hooks.on_pull(&self.hook_context(conn, &[]), HookPullRequest { cursor, live }).map_err(|e| e.message())
    }

    fn after_push(&mut self, conn: u64, batch: Vec<EventRow>) {
        let Some(hooks) = self.io.hooks.clone() else { return };
        let ctx = self.hook_context(conn, &batch);
        let created_at = batch.first().map(|e| e.created_at.clone()).unwrap_or_default();
        hooks.after_push(ctx, batch.iter().map(hook_event).collect(), created_at);
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn to_row(r: EventRow) -> Row {
    Row {
        seq_num: r.seq_num,
        parent_seq_num: r.parent_seq_num,
        name: r.name,
        args: r.args,
        created_at: r.created_at,
        client_id: r.client_id,
        session_id: r.session_id,
        event_id: r.event_id,
    }
}

fn from_row(r: Row) -> EventRow {
    EventRow {
        seq_num: r.seq_num,
        parent_seq_num: r.parent_seq_num,
        name: r.name,
        args: r.args,
        created_at: r.created_at,
        client_id: r.client_id,
        session_id: r.session_id,
        event_id: r.event_id,
    }
}

impl livestore::sync::types::Host for HostState {}

impl livestore::sync::storage::Host for HostState {
    fn init_store(&mut self, store_id: String, fresh_backend_id: String) -> Result<StoreState, String> {
        let (head, backend_id) =
            lock(&self.io.db).init_store(&store_id, &fresh_backend_id).map_err(|e| format!("{e:#}"))?;
        Ok(StoreState { head, backend_id })
    }

    fn append_batch(&mut self, store_id: String, expected_head: i64, events: Vec<EventRow>) -> Result<(), String> {
        let rows: Vec<Row> = events.into_iter().map(to_row).collect();
        lock(&self.io.db).append_batch(&store_id, expected_head, &rows).map_err(|e| format!("{e:#}"))
    }

    fn find_event_ids(&mut self, store_id: String, ids: Vec<String>) -> Result<Vec<Option<i64>>, String> {
        lock(&self.io.db).find_event_ids(&store_id, &ids).map_err(|e| format!("{e:#}"))
    }

    fn seq_at_time(&mut self, store_id: String, timestamp: String) -> Result<i64, String> {
        lock(&self.io.db).seq_at_time(&store_id, &timestamp).map_err(|e| format!("{e:#}"))
    }

    fn count_after(&mut self, store_id: String, cursor: i64) -> Result<u64, String> {
        lock(&self.io.db).count_after(&store_id, cursor).map_err(|e| format!("{e:#}"))
    }

    fn read_after(&mut self, store_id: String, cursor: i64, limit: u32) -> Result<Vec<EventRow>, String> {
        let rows = lock(&self.io.db).read_after(&store_id, cursor, limit).map_err(|e| format!("{e:#}"))?;
        Ok(rows.into_iter().map(from_row).collect())
    }
}

impl livestore::sync::connections::Host for HostState {
    fn send(&mut self, conn: u64, frame: String) {
        if let Some(tx) = lock(&self.io.conns).get(&conn) {
            // A closed receiver means the socket is gone; its Closed message follows.
            tx.send_text(frame);
        }
    }

    fn close(&mut self, conn: u64, code: u16, reason: String) {
        if let Some(tx) = lock(&self.io.conns).get(&conn) {
            tx.close(code, reason);
        }
    }

    /// A native store instance lives as long as any of its connections, so there is
    /// nothing to resume later (Cloudflare's shim keeps it as a WebSocket attachment).
    fn save_state(&mut self, _conn: u64, _state: String) {}
}

impl livestore::sync::host::Host for HostState {
    fn check_token(&mut self, token: String) -> bool {
        match &self.io.auth_token {
            None => true,
            Some(expected) => crate::auth::token_matches(Some(&token), expected),
        }
    }

    fn report(&mut self, event: TelemetryEvent) {
        use crate::telemetry::*;
        match event {
            TelemetryEvent::PushAccepted((events, micros)) => {
                metrics::counter!(PUSHES_ACCEPTED).increment(1);
                metrics::counter!(EVENTS_PUSHED).increment(u64::from(events));
                metrics::histogram!(PUSH_DURATION).record(micros as f64 / 1e6);
            }
            TelemetryEvent::PushRejected(reason) => metrics::counter!(PUSHES_REJECTED, "reason" => reason).increment(1),
            TelemetryEvent::ChunkSent => metrics::counter!(PULL_CHUNKS_SENT).increment(1),
        }
    }

    fn max_push_events(&mut self) -> u32 {
        self.io.max_push_events
    }

    fn log(&mut self, level: LogLevel, message: String) {
        match level {
            LogLevel::Debug => tracing::debug!(target: "livestore_sync::component", "{message}"),
            LogLevel::Info => tracing::info!(target: "livestore_sync::component", "{message}"),
            LogLevel::Warn => tracing::warn!(target: "livestore_sync::component", "{message}"),
            LogLevel::Error => tracing::error!(target: "livestore_sync::component", "{message}"),
        }
    }
}

/// How a client connected, as the component sees it.
pub struct OpenInfo {
    pub protocol: Protocol,
    pub authenticated: bool,
    pub client_id: Option<String>,
    pub payload: Option<String>,
    pub headers: Vec<(String, String)>,
}

/// Engine + compiled component + linker, shared by every store of the process.
pub struct SyncRuntime {
    engine: Engine,
    pre: SyncComponentPre<HostState>,
}

/// A running instance of the component for one store.
pub struct StoreInstance {
    store: Store<HostState>,
    bindings: SyncComponent,
}

impl SyncRuntime {
    /// Compile (or load from `cache_dir`) the embedded component.
    pub fn load(cache_dir: Option<&Path>) -> Result<SyncRuntime> {
        let mut config = Config::new();
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config).map_err(anyhow::Error::from).context("creating the wasmtime engine")?;
        let started = Instant::now();
        let (component, source) = load_component(&engine, cache_dir)?;
        tracing::debug!(elapsed_ms = started.elapsed().as_secs_f64() * 1e3, source, "sync component ready");
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(anyhow::Error::from).context("linking WASI")?;
        SyncComponent::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(anyhow::Error::from)
            .context("linking the sync imports")?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .context("pre-instantiating the sync component")?;
        let pre =
            SyncComponentPre::new(pre).map_err(anyhow::Error::from).context("checking the component's exports")?;
        Ok(SyncRuntime { engine, pre })
    }

    /// A fresh instance for one store. The component gets no filesystem, network,
    /// environment or stdio: only clocks and randomness from WASI.
    pub fn instantiate(&self, io: Arc<ShardIo>) -> Result<StoreInstance> {
        let wasi = WasiCtx::builder().allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).build();
        let state =
            HostState { wasi, table: ResourceTable::new(), io, hook_contexts: HashMap::new(), http_context: None };
        let mut store = Store::new(&self.engine, state);
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(anyhow::Error::from)
            .context("instantiating the sync component")?;
        Ok(StoreInstance { store, bindings })
    }
}

impl StoreInstance {
    /// Errors are traps (a bug in the component): the caller drops the instance.
    pub fn opened(&mut self, conn: u64, store_id: &str, open: OpenInfo) -> Result<Result<(), String>> {
        if self.store.data().io.hooks.is_some() {
            let ctx = HookContext {
                store_id: store_id.to_string(),
                client_id: open.client_id.clone(),
                payload: open.payload.clone(),
                headers: open.headers.clone(),
            };
            self.store.data_mut().hook_contexts.insert(conn, ctx);
        }
        let info = livestore::sync::types::ConnectionInfo {
            conn,
            store_id: store_id.to_string(),
            protocol: open.protocol,
            authenticated: open.authenticated,
            client_id: open.client_id,
            payload: open.payload,
            headers: open.headers,
        };
        self.bindings.livestore_sync_handler().call_opened(&mut self.store, &info).map_err(anyhow::Error::from)
    }

    pub fn frame(&mut self, conn: u64, text: &str) -> Result<()> {
        self.bindings.livestore_sync_handler().call_frame(&mut self.store, conn, text).map_err(anyhow::Error::from)
    }

    /// One HTTP-transport request; returns the response body (a JSON array).
    pub fn http_request(&mut self, store_id: &str, payload: Option<&str>, body: &str) -> Result<String> {
        if self.store.data().io.hooks.is_some() {
            let ctx = HookContext {
                store_id: store_id.to_string(),
                payload: payload.map(str::to_string),
                ..HookContext::default()
            };
            self.store.data_mut().http_context = Some(ctx);
        }
        self.bindings
            .livestore_sync_handler()
            .call_http_request(&mut self.store, store_id, payload, body)
            .map_err(anyhow::Error::from)
    }

    pub fn closed(&mut self, conn: u64) -> Result<()> {
        self.store.data_mut().hook_contexts.remove(&conn);
        self.bindings.livestore_sync_handler().call_closed(&mut self.store, conn).map_err(anyhow::Error::from)
    }
}

/// Compiling the component takes ~130 ms (release); a cached `.cwasm` loads in ~1 ms.
fn load_component(engine: &Engine, cache_dir: Option<&Path>) -> Result<(Component, &'static str)> {
    let cached = cache_dir.map(|dir| cache_path(engine, dir));
    if let Some(path) = cached.as_ref().filter(|p| p.exists()) {
        // SAFETY: the file was written by `Component::serialize` of this exact component
        // and engine configuration (both are part of its name), in a directory we own.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(c) => return Ok((c, "cache")),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unusable component cache")
            }
        }
    }
    let component =
        Component::new(engine, GUEST_WASM).map_err(anyhow::Error::from).context("compiling the sync component")?;
    if let Some(path) = cached {
        if let Err(e) = write_cache(&component, &path) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the component cache");
        }
    }
    Ok((component, "compiled"))
}

fn cache_path(engine: &Engine, dir: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    dir.join(format!("sync-{}-{:016x}.cwasm", &GUEST_SHA256[..16], h.finish()))
}

fn write_cache(component: &Component, path: &Path) -> Result<()> {
    let bytes = component.serialize().map_err(anyhow::Error::from)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
