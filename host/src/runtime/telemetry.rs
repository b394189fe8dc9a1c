//! `livestore:sync/telemetry`: the component's metrics and log lines.

use super::log_line;
use super::state::HostState;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once at start with `--log-format json`: component lines are then split into fields.
static STRUCTURED: AtomicBool = AtomicBool::new(false);

pub fn log_component_lines_as_fields(on: bool) {
    STRUCTURED.store(on, Ordering::Relaxed);
}

/// One component line at `$level`: as fields when structured logging is on and the line follows
/// the component's `key=value` convention, else as it is.
macro_rules! component_event {
    ($level:expr, $message:expr) => {{
        let parsed = if STRUCTURED.load(Ordering::Relaxed) { log_line::parse($message) } else { None };
        match parsed {
            Some(line) => {
                let num = |k: &str| line.get(k).and_then(|v| v.parse::<u64>().ok());
                tracing::event!(
                    target: "livestore_sync::component",
                    $level,
                    store = line.get("store"),
                    conn = line.get("conn"),
                    request = line.get("request"),
                    client = line.get("client"),
                    events = num("events"),
                    head = num("head"),
                    cursor = num("cursor"),
                    live = line.get("live").map(|v| v == "true"),
                    result = line.get("result"),
                    "{}",
                    line.event
                )
            }
            None => tracing::event!(target: "livestore_sync::component", $level, "{}", $message),
        }
    }};
}
use crate::bindings::livestore::sync::telemetry::Host;
use crate::bindings::{LogLevel, PushRejection, TelemetryEvent};

/// The `reason` label of a rejected push (one of `PUSH_REJECTION_REASONS`).
fn reason(r: PushRejection) -> &'static str {
    use crate::telemetry::PUSH_REJECTION_REASONS as R;
    match r {
        PushRejection::InvalidPayload => R[0],
        PushRejection::StoreMismatch => R[1],
        PushRejection::TooManyEvents => R[2],
        PushRejection::BackendIdMismatch => R[3],
        PushRejection::ServerAhead => R[4],
        PushRejection::InvalidBatch => R[5],
        PushRejection::Hook => R[6],
        PushRejection::StorageError => R[7],
    }
}

impl Host for HostState {
    fn report(&mut self, event: TelemetryEvent) {
        use crate::telemetry::*;
        match event {
            TelemetryEvent::PushAccepted(push) => {
                metrics::counter!(PUSHES_ACCEPTED).increment(1);
                metrics::counter!(EVENTS_PUSHED).increment(u64::from(push.events));
                metrics::histogram!(PUSH_DURATION).record(push.micros as f64 / 1e6);
            }
            TelemetryEvent::PushRejected(r) => metrics::counter!(PUSHES_REJECTED, "reason" => reason(r)).increment(1),
            TelemetryEvent::ChunkSent => metrics::counter!(PULL_CHUNKS_SENT).increment(1),
        }
    }

    fn log(&mut self, level: LogLevel, message: String) {
        use tracing::Level;
        match level {
            LogLevel::Debug => component_event!(Level::DEBUG, &message),
            LogLevel::Info => component_event!(Level::INFO, &message),
            LogLevel::Warn => component_event!(Level::WARN, &message),
            LogLevel::Error => component_event!(Level::ERROR, &message),
        }
    }
}
