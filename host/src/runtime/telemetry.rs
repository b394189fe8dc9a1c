//! `livestore:sync/telemetry`: the component's metrics and log lines.

use super::state::HostState;
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
        match level {
            LogLevel::Debug => tracing::debug!(target: "livestore_sync::component", "{message}"),
            LogLevel::Info => tracing::info!(target: "livestore_sync::component", "{message}"),
            LogLevel::Warn => tracing::warn!(target: "livestore_sync::component", "{message}"),
            LogLevel::Error => tracing::error!(target: "livestore_sync::component", "{message}"),
        }
    }
}
