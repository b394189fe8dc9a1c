//! The `sync-component` world (`wit/sync.wit`) as Rust types and traits, shared by the
//! runtime that implements its imports and by storage, whose rows are the WIT `event-row`.

wasmtime::component::bindgen!({
    world: "sync-component",
    path: "../wit",
    additional_derives: [PartialEq, Eq],
});

pub use livestore::sync::types::{
    AppendError, Caller, ConnectionInfo, EventRow, LogLevel, Protocol, PushRejection, Settings, StoreState,
    TelemetryEvent,
};
