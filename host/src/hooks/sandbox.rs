//! The hooks' sandbox: an engine of their own with epoch interruption, a fresh store and
//! instance per call (no state leaks between calls, stores or hooks; a trap loses nothing),
//! a CPU-time deadline, a wall-clock backstop, a memory cap, and WASI that grants nothing but
//! clocks, randomness and allowlisted outbound HTTP.

use super::http::HttpPolicy;
use super::scratch::Scratch;
use super::types::{HookError, HookSettings};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Instance, InstancePre, Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// How often the epoch advances; the deadline is checked at this granularity.
const TICK: Duration = Duration::from_millis(1);
/// Hook instances alive at once (calls in flight); beyond it a call fails as a trap.
const POOL_SLOTS: u32 = 1000;
/// Log lines one call may write before the rest are dropped.
const MAX_LOG_LINES: u32 = 100;

pub struct Sandbox {
    pub engine: Engine,
    pub linker: Linker<HookState>,
    pub settings: HookSettings,
    pub scratch: Arc<Scratch>,
    vars: Arc<HashMap<String, String>>,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// Why a call was stopped by the sandbox (carried through wasmtime's error).
#[derive(Debug)]
pub struct Stopped(pub &'static str, pub String);

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}
impl std::error::Error for Stopped {}

/// A store's data: one hook call's world.
pub struct HookState {
    wasi: WasiCtx,
    /// The hook's stderr (a panic message, an allocation failure), kept to explain a trap.
    stderr: MemoryOutputPipe,
    http: WasiHttpCtx,
    http_policy: HttpPolicy,
    table: ResourceTable,
    pub hook: String,
    pub store_id: String,
    pub scratch: Arc<Scratch>,
    pub vars: Arc<HashMap<String, String>>,
    pub max_output: usize,
    pub log_lines: u32,
    memory_limit: usize,
    /// A memory grow beyond the cap was refused.
    memory_denied: bool,
    cpu_start: Duration,
    wall_start: Instant,
    cpu_deadline: Duration,
    wall_deadline: Duration,
}

impl WasiView for HookState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HookState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_policy }
    }
}

impl ResourceLimiter for HookState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_denied = true;
            return Err(wasmtime::Error::from(Stopped(
                "memory",
                format!("exceeded its {} MiB memory cap (asked for {} MiB)", self.memory_limit >> 20, desired >> 20),
            )));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// CPU time of the calling thread: it does not advance while a hook waits on HTTP.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec to the pointer we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Sandbox {
    /// `add_imports` links the `livestore:hooks` imports (`bindings.rs`) into the linker.
    pub fn new(settings: &HookSettings, add_imports: fn(&mut Linker<HookState>) -> Result<()>) -> Result<Sandbox> {
        let mut config = Config::new();
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        config.epoch_interruption(true);
        // Every call gets a fresh instance: a pool of pre-reserved slots makes that cheap
        // (and caps each memory at the configured limit).
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_SLOTS)
            .total_core_instances(POOL_SLOTS * 4)
            .total_memories(POOL_SLOTS * 2)
            .total_tables(POOL_SLOTS * 4)
            .max_memory_size(settings.memory_limit.max(1 << 20));
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine =
            Engine::new(&config).map_err(anyhow::Error::from).context("creating the hooks' wasmtime engine")?;
        let mut linker = Linker::<HookState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(anyhow::Error::from).context("linking WASI")?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking wasi:http")?;
        add_imports(&mut linker)?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (weak, stop) = (engine.weak(), stop_ticker.clone());
        std::thread::Builder::new()
            .name("hook-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .context("starting the hooks' epoch ticker")?;
        Ok(Sandbox {
            engine,
            linker,
            settings: settings.clone(),
            scratch: Arc::new(Scratch::default()),
            vars: Arc::new(settings.vars.clone()),
            stop_ticker,
        })
    }

    /// A fresh store for one call of `hook` on behalf of `store_id`, with its limits armed.
    fn store(&self, hook: &str, store_id: &str) -> Store<HookState> {
        let stderr = MemoryOutputPipe::new(4096);
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stderr(stderr.clone())
            .build();
        let s = &self.settings;
        let state = HookState {
            wasi,
            stderr,
            http: WasiHttpCtx::new(),
            http_policy: HttpPolicy::new(hook, &s.allow_hosts, s.http_timeout),
            table: ResourceTable::new(),
            hook: hook.to_string(),
            store_id: store_id.to_string(),
            scratch: self.scratch.clone(),
            vars: self.vars.clone(),
            max_output: s.max_output_bytes,
            log_lines: MAX_LOG_LINES,
            memory_limit: s.memory_limit,
            memory_denied: false,
            cpu_start: thread_cpu_time(),
            wall_start: Instant::now(),
            cpu_deadline: s.cpu_deadline,
            wall_deadline: s.wall_deadline,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| s);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            let s = ctx.data();
            let cpu = thread_cpu_time().saturating_sub(s.cpu_start);
            if cpu >= s.cpu_deadline {
                let msg = format!("exceeded its {} ms CPU deadline", s.cpu_deadline.as_millis());
                return Err(wasmtime::Error::from(Stopped("cpu-deadline", msg)));
            }
            if s.wall_start.elapsed() >= s.wall_deadline {
                let msg = format!("took longer than {} ms", s.wall_deadline.as_millis());
                return Err(wasmtime::Error::from(Stopped("wall-deadline", msg)));
            }
            Ok(UpdateDeadline::Continue(1))
        });
        store
    }

    /// Instantiate `pre` for one call and run `f`; classify whatever goes wrong.
    pub fn call<T>(
        &self,
        hook: &str,
        function: &'static str,
        store_id: &str,
        pre: &InstancePre<HookState>,
        f: impl FnOnce(&mut Store<HookState>, &Instance) -> wasmtime::Result<Result<T, String>>,
    ) -> Result<T, HookError> {
        let started = Instant::now();
        let mut store = self.store(hook, store_id);
        let outcome = pre.instantiate(&mut store).and_then(|instance| f(&mut store, &instance));
        let elapsed = started.elapsed();
        metrics::counter!(crate::telemetry::HOOK_CALLS, "hook" => hook.to_string(), "function" => function)
            .increment(1);
        metrics::histogram!(crate::telemetry::HOOK_DURATION, "hook" => hook.to_string(), "function" => function)
            .record(elapsed.as_secs_f64());
        let failed = |kind: &'static str, message: String| {
            metrics::counter!(crate::telemetry::HOOK_FAILURES, "hook" => hook.to_string(), "kind" => kind).increment(1);
            tracing::warn!(
                hook,
                function,
                store_id,
                kind,
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                "hook failed: {message}"
            );
            HookError::Failed { hook: hook.to_string(), kind, message }
        };
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) if message.len() > self.settings.max_output_bytes => Err(failed(
                "output",
                format!("returned a {} byte message (limit {})", message.len(), self.settings.max_output_bytes),
            )),
            Ok(Err(message)) => {
                metrics::counter!(crate::telemetry::HOOK_REJECTIONS, "hook" => hook.to_string(), "function" => function)
                    .increment(1);
                Err(HookError::Rejected(message))
            }
            Err(e) => {
                if let Some(Stopped(kind, message)) = e.chain().find_map(|c| c.downcast_ref::<Stopped>()) {
                    return Err(failed(kind, message.clone()));
                }
                let stderr = store.data().stderr.contents();
                let said = String::from_utf8_lossy(&stderr);
                let said = said
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty() && !l.starts_with("note: run with"))
                    .unwrap_or("")
                    .chars()
                    .take(300)
                    .collect::<String>();
                if store.data().memory_denied || said.starts_with("memory allocation of") {
                    let cap = self.settings.memory_limit >> 20;
                    let detail = if said.is_empty() { String::new() } else { format!(" ({said})") };
                    return Err(failed("memory", format!("exceeded its {cap} MiB memory cap{detail}")));
                }
                let trap = e
                    .chain()
                    .find_map(|c| c.downcast_ref::<wasmtime::Trap>().map(|t| t.to_string()))
                    .unwrap_or_else(|| format!("{e}").lines().next().unwrap_or("error").to_string());
                let detail = if said.is_empty() { String::new() } else { format!(": {said}") };
                Err(failed("trap", format!("trapped ({trap}){detail}")))
            }
        }
    }
}
