//! `livestore:sync/telemetry`: the component's metrics and log lines.

use super::state::HostState;
use crate::bindings::livestore::sync::telemetry::Host;
use crate::bindings::{LogLevel, PushRejection, TelemetryEvent};

/// The `reason` label of a rejected push.
fn reason(r: PushRejection) -> &'static str {
    match r {
        PushRejection::InvalidPayload => "invalid-payload",
        PushRejection::StoreMismatch => "store-mismatch",
        PushRejection::TooManyEvents => "too-many-events",
        PushRejection::BackendIdMismatch => "backend-id-mismatch",
        PushRejection::ServerAhead => "server-ahead",
        PushRejection::InvalidBatch => "invalid-batch",
        PushRejection::Hook => "hook",
        PushRejection::StorageError => "storage-error",
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
        match level {
            LogLevel::Debug => tracing::debug!(target: "livestore_sync::component", "{message}"),
            LogLevel::Info => tracing::info!(target: "livestore_sync::component", "{message}"),
            LogLevel::Warn => tracing::warn!(target: "livestore_sync::component", "{message}"),
            LogLevel::Error => tracing::error!(target: "livestore_sync::component", "{message}"),
        }
    }
}
