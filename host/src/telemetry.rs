//! Prometheus metrics (`GET /metrics`), through the `metrics` facade.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const OPEN_CONNECTIONS: &str = "livestore_sync_open_connections";
pub const ACTIVE_STORES: &str = "livestore_sync_active_stores";
pub const EVENTS_PUSHED: &str = "livestore_sync_events_pushed_total";
pub const PUSHES_ACCEPTED: &str = "livestore_sync_pushes_accepted_total";
pub const PUSHES_REJECTED: &str = "livestore_sync_pushes_rejected_total";
pub const PUSH_DURATION: &str = "livestore_sync_push_duration_seconds";
/// Where a frame's time goes on the server (the bench harness's per-push budget): waiting for
/// its store's shard, inside the component call, and of that, in the storage commit.
pub const FRAME_WAIT: &str = "livestore_sync_frame_wait_seconds";
pub const FRAME_HANDLE: &str = "livestore_sync_frame_handle_seconds";
pub const STORAGE_APPEND: &str = "livestore_sync_storage_append_seconds";
pub const STORAGE_COMMIT: &str = "livestore_sync_storage_group_commit_seconds";
pub const PULL_CHUNKS_SENT: &str = "livestore_sync_pull_chunks_sent_total";
pub const HTTP_REQUESTS: &str = "livestore_sync_http_rpc_requests_total";
pub const SLOW_CONSUMERS_CLOSED: &str = "livestore_sync_slow_consumers_closed_total";
pub const CONNECTIONS_REFUSED: &str = "livestore_sync_connections_refused_total";
pub const HOOK_CALLS: &str = "livestore_sync_hook_calls_total";
pub const HOOK_REJECTIONS: &str = "livestore_sync_hook_rejections_total";
pub const HOOK_FAILURES: &str = "livestore_sync_hook_failures_total";
pub const HOOK_DURATION: &str = "livestore_sync_hook_duration_seconds";
pub const HOOK_HTTP_DENIED: &str = "livestore_sync_hook_http_denied_total";
pub const HEALTH_PROBES: &str = "livestore_sync_health_storage_probes_total";
pub const BUILD_INFO: &str = "livestore_sync_build_info";
pub const PROCESS_RSS: &str = "process_resident_memory_bytes";
pub const PROCESS_CPU: &str = "process_cpu_seconds_total";
pub const PROCESS_FDS: &str = "process_open_fds";
pub const PROCESS_START: &str = "process_start_time_seconds";

/// Every `reason` of `livestore_sync_pushes_rejected_total`.
pub const PUSH_REJECTION_REASONS: [&str; 8] = [
    "invalid-payload",
    "store-mismatch",
    "too-many-events",
    "backend-id-mismatch",
    "server-ahead",
    "invalid-batch",
    "hook",
    "storage-error",
];

/// Every `reason` of `livestore_sync_connections_refused_total`.
pub const REFUSAL_REASONS: [&str; 8] =
    ["auth", "hook", "origin", "max-connections", "unauthenticated", "per-client", "pending-evicted", "store-id"];

/// The process-wide recorder (installed on first use; servers in one process share it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];
        let builder = [PUSH_DURATION, HOOK_DURATION, FRAME_WAIT, FRAME_HANDLE, STORAGE_APPEND, STORAGE_COMMIT]
            .into_iter()
            .try_fold(PrometheusBuilder::new(), |b, name| {
                b.set_buckets_for_metric(Matcher::Full(name.to_string()), &buckets)
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        describe();
        zero_series();
        handle
    })
}

fn describe() {
    metrics::describe_gauge!(OPEN_CONNECTIONS, "WebSocket connections currently open");
    metrics::describe_counter!(HEALTH_PROBES, "storage writes made by /health (at most one a second)");
    metrics::describe_gauge!(ACTIVE_STORES, "stores with a running sync component instance");
    metrics::describe_counter!(EVENTS_PUSHED, "events committed to store logs");
    metrics::describe_counter!(PUSHES_ACCEPTED, "push requests committed");
    metrics::describe_counter!(PUSHES_REJECTED, "push requests refused, by reason");
    metrics::describe_counter!(HOOK_CALLS, "hook calls, by hook and function");
    metrics::describe_counter!(HOOK_REJECTIONS, "requests a hook refused, by hook and function");
    metrics::describe_counter!(
        HOOK_FAILURES,
        "hook calls that failed, by hook and kind (cpu-deadline, wall-deadline, memory, trap, output, error, queue-full)"
    );
    metrics::describe_histogram!(HOOK_DURATION, "time of one hook call, instantiation included");
    metrics::describe_counter!(HOOK_HTTP_DENIED, "outbound HTTP requests of hooks to hosts not allowlisted");
    metrics::describe_histogram!(
        PUSH_DURATION,
        "time to admit a push inside the sync component (validate, commit, publish)"
    );
    metrics::describe_histogram!(
        FRAME_WAIT,
        "time a client frame waits for its store's shard (socket read to handling)"
    );
    metrics::describe_histogram!(FRAME_HANDLE, "time of the sync component's call for one client frame");
    metrics::describe_histogram!(
        STORAGE_APPEND,
        "time of one batch's append (append-batch; its own commit, or its rows inside a group's transaction)"
    );
    metrics::describe_histogram!(
        STORAGE_COMMIT,
        "time of the commit shared by a group of queued frames' appends (SQLite)"
    );
    metrics::describe_counter!(PULL_CHUNKS_SENT, "pull chunks sent (catch-up and live broadcasts)");
    metrics::describe_counter!(HTTP_REQUESTS, "LiveStore HTTP-transport requests");
    metrics::describe_counter!(SLOW_CONSUMERS_CLOSED, "connections cut off because their send queue was full");
    metrics::describe_counter!(CONNECTIONS_REFUSED, "connections refused, by reason");
    metrics::describe_gauge!(BUILD_INFO, "always 1; the version and the embedded component's sha256 as labels");
    metrics::describe_gauge!(PROCESS_RSS, "resident memory of the process, in bytes");
    metrics::describe_counter!(PROCESS_CPU, "CPU time of the process (user + system), in whole seconds");
    metrics::describe_gauge!(PROCESS_FDS, "open file descriptors (sockets included)");
    metrics::describe_gauge!(PROCESS_START, "when the process started, seconds since the Unix epoch");
}

/// Every series exists from the start (counters at 0), so dashboards and alerts see a zero
/// rather than nothing.
fn zero_series() {
    for name in [
        EVENTS_PUSHED,
        PUSHES_ACCEPTED,
        PULL_CHUNKS_SENT,
        HTTP_REQUESTS,
        SLOW_CONSUMERS_CLOSED,
        HEALTH_PROBES,
        HOOK_HTTP_DENIED,
    ] {
        metrics::counter!(name).absolute(0);
    }
    for reason in PUSH_REJECTION_REASONS {
        metrics::counter!(PUSHES_REJECTED, "reason" => reason).absolute(0);
    }
    for reason in REFUSAL_REASONS {
        metrics::counter!(CONNECTIONS_REFUSED, "reason" => reason).absolute(0);
    }
    metrics::gauge!(OPEN_CONNECTIONS).set(0.0);
    metrics::gauge!(ACTIVE_STORES).set(0.0);
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "component_sha256" => crate::runtime::GUEST_SHA256.trim())
        .set(1.0);
    if let Some(start) = process_start_time() {
        metrics::gauge!(PROCESS_START).set(start);
    }
}

/// Seconds since the epoch when this process started (from `/proc`).
fn process_start_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let start_ticks: f64 = stat.rsplit(')').next()?.split_whitespace().nth(19)?.parse().ok()?;
    let boot: f64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot + start_ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// The process gauges, read from `/proc` when metrics are rendered.
fn update_process_metrics() {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(kib) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse::<f64>().ok()))
        {
            metrics::gauge!(PROCESS_RSS).set(kib * 1024.0);
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
        // utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the command name.
        let ticks: f64 = fields.iter().skip(11).take(2).filter_map(|f| f.parse::<f64>().ok()).sum();
        metrics::counter!(PROCESS_CPU).absolute((ticks / clock_ticks()) as u64);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!(PROCESS_FDS).set(fds.count() as f64);
    }
}

/// Make sure the recorder exists before any metric is touched.
pub fn init() {
    let _ = handle();
}

pub fn render() -> String {
    let handle = handle();
    update_process_metrics();
    handle.render()
}
