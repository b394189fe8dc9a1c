//! The livestore-sync component: everything a sync backend decides (frame decoding and
//! encoding, validation, sequencing, pull streaming, broadcasts, error encoding) lives here,
//! behind the small [`Host`] trait. Hosts (wasmtime natively, a JS shim on Cloudflare) only
//! move bytes and rows.

//!
//! Layers, each using only those below it:
//! - `sync`: one store's state machine, dispatching each connection's frames to its protocol;
//! - `livestore` (with `pull` streaming) and `simple`: the two protocols;
//! - `core`: the protocol-neutral store (open, admit, publish), `snapshot` (resumable
//!   connection state) and `ignored` (frames the host may drop unread);
//! - `wire`, `encode`, `simple_wire`, `errors`, `events`, `chunks`, `clock`, `ids`: formats,
//!   checks and values;
//! - `host`: what the logic needs from its host, including time and randomness, so the logic
//!   is deterministic; `mem_host` implements it in memory for tests and fuzzing.

pub mod chunks;
pub mod clock;
pub mod core;
pub mod encode;
pub mod errors;
pub mod events;
pub mod host;
pub mod ids;
pub mod ignored;
pub mod livestore;
pub mod mem_host;
pub mod pull;
pub mod simple;
pub mod simple_wire;
pub mod snapshot;
pub mod sync;
pub mod wire;

#[cfg(test)]
mod protocol_tests;

pub use crate::core::Protocol;
pub use host::{EventRow, HookKinds, Host, LogLevel, StoreState, Telemetry};
pub use sync::StoreSync;

#[cfg(target_arch = "wasm32")]
mod component;
