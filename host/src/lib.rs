//! livestore-sync: a LiveStore sync backend. The sync logic is a WebAssembly component
//! (guest/) embedded in this host, which provides SQLite storage and WebSocket I/O.

pub mod activity;
pub mod admin_tail;
pub mod auth;
pub mod bindings;
pub mod cli;
pub mod cli_args;
pub mod config;
pub mod conn_queue;
pub mod data_lock;
pub mod defaults;
pub mod dev_vars;
pub mod edge;
pub mod fault_report;
pub mod health_check;
pub mod hooks;
pub mod layout_migration;
pub mod lock;
pub mod peer_notify;
pub mod redact;
pub mod runtime;
pub mod schema;
pub mod server;
pub mod shard;
#[cfg(test)]
mod shared_rules_tests;
pub mod storage;
pub mod store_admin;
pub mod store_id;
pub mod sync_params;
pub mod table_names;
pub mod telemetry;

pub use config::ServerConfig;
pub use server::{start, RunningServer};
pub use storage::Durability;
