//! The embedded sync component under wasmtime: engine, compiled component (cached on disk),
//! linker, and per-store instances. Each imported WIT interface is implemented in a file of
//! its own (`storage.rs`, `connections.rs`, `auth.rs`, `telemetry.rs`, `config.rs`, `hooks.rs`).

mod auth;
mod cache;
mod config;
mod connections;
mod hooks;
mod log_line;
mod state;
mod storage;
pub mod telemetry;

use crate::bindings::{ConnectionInfo, SyncComponent, SyncComponentPre};
use crate::hooks::HookContext;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::WasiCtx;

pub use crate::bindings::Protocol;

pub use crate::conn_queue::{ConnSender, Outgoing};
pub use cache::{GUEST_SHA256, GUEST_WASM};
use state::HostState;
pub use state::ShardIo;

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
        // `perf` can name the component's functions (`/tmp/perf-PID.map`); for profiling only.
        if std::env::var_os("LIVESTORE_SYNC_PERF_MAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(anyhow::Error::from).context("creating the wasmtime engine")?;
        let started = Instant::now();
        let (component, source) = cache::load_component(&engine, cache_dir)?;
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
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            io,
            hook_contexts: HashMap::new(),
            http_context: None,
            backend_id: None,
            known_head: 0,
            changed_elsewhere: false,
        };
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
        let info = ConnectionInfo {
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
            .call_http_request(&mut self.store, store_id, body)
            .map_err(anyhow::Error::from)
    }

    /// Pull streams the connection has open, as the component counts them.
    pub fn open_pulls(&mut self, conn: u64) -> Result<Option<u32>> {
        self.bindings.livestore_sync_handler().call_open_pulls(&mut self.store, conn).map_err(anyhow::Error::from)
    }

    /// The backend id the instance loaded, once it opened its store.
    pub fn backend_id(&self) -> Option<&str> {
        self.store.data().backend_id.as_deref()
    }

    /// The highest seqNum the instance has seen in storage.
    pub fn known_head(&self) -> i64 {
        self.store.data().known_head
    }

    /// Storage refused an append because the store was reset or replaced elsewhere: the
    /// instance's head and backend id are stale, and it must be dropped.
    pub fn changed_elsewhere(&self) -> bool {
        self.store.data().changed_elsewhere
    }

    /// Another node committed up to `head`: the instance delivers what it has not seen.
    pub fn log_advanced(&mut self, store_id: &str, head: i64) -> Result<()> {
        self.bindings
            .livestore_sync_handler()
            .call_log_advanced(&mut self.store, store_id, head)
            .map_err(anyhow::Error::from)
    }

    pub fn closed(&mut self, conn: u64) -> Result<()> {
        self.store.data_mut().hook_contexts.remove(&conn);
        self.bindings.livestore_sync_handler().call_closed(&mut self.store, conn).map_err(anyhow::Error::from)
    }
}
