//! `livestore:sync/host`: the token check, metrics, settings and logging.

use super::state::HostState;
use crate::bindings::livestore::sync::host::Host;
use crate::bindings::{LogLevel, TelemetryEvent};

impl Host for HostState {
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
