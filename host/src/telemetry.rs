//! Prometheus metrics (`GET /metrics`), through the `metrics` facade.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const OPEN_CONNECTIONS: &str = "livestore_sync_open_connections";
pub const ACTIVE_STORES: &str = "livestore_sync_active_stores";
pub const EVENTS_PUSHED: &str = "livestore_sync_events_pushed_total";
pub const PUSHES_ACCEPTED: &str = "livestore_sync_pushes_accepted_total";
pub const PUSHES_REJECTED: &str = "livestore_sync_pushes_rejected_total";
pub const PUSH_DURATION: &str = "livestore_sync_push_duration_seconds";
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

/// The process-wide recorder (installed on first use; servers in one process share it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(PUSH_DURATION.to_string()), &buckets)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(HOOK_DURATION.to_string()), &buckets))
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        describe();
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
    metrics::describe_counter!(PULL_CHUNKS_SENT, "pull chunks sent (catch-up and live broadcasts)");
    metrics::describe_counter!(HTTP_REQUESTS, "LiveStore HTTP-transport requests");
    metrics::describe_counter!(SLOW_CONSUMERS_CLOSED, "connections cut off because their send queue was full");
    metrics::describe_counter!(CONNECTIONS_REFUSED, "connections refused, by reason");
}

/// Make sure the recorder exists before any metric is touched.
pub fn init() {
    let _ = handle();
}

pub fn render() -> String {
    handle().render()
}
