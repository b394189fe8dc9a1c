//! The livestore-sync component: everything a sync backend decides (frame decoding and
//! encoding, validation, sequencing, pull streaming, broadcasts, error encoding) lives here,
//! behind the small [`Host`] trait. Hosts (wasmtime natively, a JS shim on Cloudflare) only
//! move bytes and rows.

pub mod clock;
pub mod encode;
pub mod events;
pub mod host;
pub mod ids;
pub mod mem_host;
pub mod pull;
pub mod simple;
pub mod snapshot;
pub mod store;
pub mod wire;

pub use host::{EventRow, HookKinds, Host, LogLevel, StoreState, Telemetry};
pub use store::{Protocol, StoreSync};

#[cfg(target_arch = "wasm32")]
mod component;
