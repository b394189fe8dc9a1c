//! The server's configuration: defaults from `defaults.rs` (which the command line states too),
//! and one conversion from the command line.

use crate::cli_args::ServeArgs;
use crate::defaults;
use crate::hooks::HookSettings;
use crate::storage::Durability;
use crate::store_id::StoreIdPattern;
use anyhow::{anyhow, Result};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// When set, a connection's payload must carry this `authToken`.
    pub auth_token: Option<String>,
    pub durability: Durability,
    /// Postgres instead of `<data dir>/sync.db` (`--database-url`, `--database-ca-file`).
    pub postgres: Option<crate::storage::postgres::PgConfig>,
    /// Store shard threads (serial owners); 0 picks the number of CPUs.
    pub shards: usize,
    /// Largest accepted WebSocket message (larger ones close the connection with 1009) and
    /// HTTP-transport body.
    pub max_frame_bytes: usize,
    /// Answer CORS preflights and allow any origin (`@livestore/sync-cf`'s `enableCORS`).
    pub cors: bool,
    /// Request headers (lower-case names) kept with each connection and given to the component.
    pub forward_headers: Vec<String>,
    /// Enables `/admin/…` (Bearer token).
    pub admin_secret: Option<String>,
    /// Unsent bytes a connection may have queued before it is cut off (close 1013).
    pub max_queue_bytes: usize,
    /// Unsent bytes all connections together may have queued (the biggest queues go first).
    pub max_total_queue_bytes: usize,
    /// Frames one connection may have waiting for its store before its socket is not read.
    pub max_frames_in_flight: usize,
    /// Time to send a complete request head.
    pub header_timeout: Duration,
    /// Connections without a complete request yet (the oldest is closed past it).
    pub max_pending_connections: usize,
    /// Per client address (0: no limit).
    pub max_connections_per_client: usize,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Time a simple-protocol socket has to authenticate.
    pub auth_timeout: Duration,
    /// Simple-protocol sockets waiting to authenticate.
    pub max_unauthenticated: usize,
    /// A socket write that takes longer than this drops the connection.
    pub send_timeout: Duration,
    /// Open WebSocket connections at once; more get `503`.
    pub max_connections: usize,
    /// Close a connection that sent nothing for this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// When non-empty, requests whose `Origin` header is not listed get `403`.
    pub allowed_origins: Vec<String>,
    /// The most events one push may carry.
    pub max_push_events: u32,
    /// Store instances open at once (idle ones are evicted and reopened from storage).
    pub max_open_stores: usize,
    /// Idle store instances kept warm (evicted beyond this; reopened from storage on demand).
    pub idle_store_cache: usize,
    /// Operator hook components and their sandbox limits.
    pub hooks: HookSettings,
    /// A stricter store-id rule for connecting clients (`--store-id-pattern`).
    pub store_id_pattern: Option<StoreIdPattern>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: defaults::HOST.into(),
            port: defaults::PORT,
            data_dir: PathBuf::from(defaults::DATA_DIR),
            auth_token: None,
            durability: Durability::Normal,
            postgres: None,
            shards: 0,
            max_frame_bytes: defaults::MAX_FRAME_BYTES,
            cors: false,
            forward_headers: Vec::new(),
            admin_secret: None,
            max_queue_bytes: defaults::MAX_QUEUE_BYTES,
            send_timeout: Duration::from_secs(defaults::SEND_TIMEOUT_SECS),
            max_total_queue_bytes: defaults::MAX_TOTAL_QUEUE_BYTES,
            max_frames_in_flight: defaults::MAX_FRAMES_IN_FLIGHT,
            header_timeout: Duration::from_secs(defaults::HEADER_TIMEOUT_SECS),
            max_pending_connections: defaults::MAX_PENDING_CONNECTIONS,
            max_connections_per_client: 0,
            trusted_proxies: Vec::new(),
            auth_timeout: Duration::from_secs(defaults::AUTH_TIMEOUT_SECS),
            max_unauthenticated: defaults::MAX_UNAUTHENTICATED,
            max_connections: defaults::MAX_CONNECTIONS,
            idle_timeout: Some(Duration::from_secs(defaults::IDLE_TIMEOUT_SECS)),
            allowed_origins: Vec::new(),
            max_push_events: defaults::MAX_PUSH_EVENTS,
            max_open_stores: defaults::MAX_OPEN_STORES,
            idle_store_cache: defaults::IDLE_STORE_CACHE,
            hooks: HookSettings::default(),
            store_id_pattern: None,
        }
    }
}

/// Trimmed, non-empty entries of a repeatable or comma-separated flag.
fn list(values: &[String]) -> Vec<String> {
    values.iter().map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect()
}

impl ServerConfig {
    /// Where the event logs live; `node` names this server in Postgres commit notices.
    pub fn engine(&self, node: &str) -> crate::storage::Engine {
        match &self.postgres {
            Some(pg) => crate::storage::Engine::Postgres { pg: pg.clone(), node: node.to_string() },
            None => crate::storage::Engine::Sqlite { path: self.data_dir.join("sync.db"), durability: self.durability },
        }
    }

    /// The configuration `livestore-sync serve` runs with (flags over environment over defaults).
    pub fn from_args(
        args: ServeArgs,
        data_dir: PathBuf,
        postgres: Option<crate::storage::postgres::PgConfig>,
    ) -> Result<ServerConfig> {
        let store_id_pattern = match args.store_id_pattern.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => Some(
                StoreIdPattern::new(p)
                    .map_err(|e| anyhow!("--store-id-pattern {p:?} is not a valid regular expression: {e}"))?,
            ),
            None => None,
        };
        let hooks = HookSettings {
            specs: list(&args.hooks),
            vars: crate::hooks::parse_vars(&args.hook_vars, |k| std::env::var(k).ok())?,
            allow_hosts: list(&args.hook_allow_hosts),
            cpu_deadline: Duration::from_millis(args.hook_cpu_ms.max(1)),
            wall_deadline: Duration::from_millis(args.hook_wall_ms.max(1)),
            memory_limit: args.hook_memory_mib.max(1) << 20,
            max_output_bytes: args.hook_max_output_bytes.max(64),
            http_timeout: Duration::from_millis(args.hook_http_timeout_ms.max(1)),
            ..Default::default()
        };
        Ok(ServerConfig {
            hooks,
            store_id_pattern,
            host: args.host,
            port: args.port,
            data_dir,
            auth_token: args.auth_token.filter(|t| !t.is_empty()),
            durability: args.durability,
            postgres,
            shards: args.shards,
            max_frame_bytes: args.max_frame_bytes,
            cors: args.cors,
            admin_secret: args.admin_secret.filter(|s| !s.is_empty()),
            max_queue_bytes: args.max_queue_bytes,
            send_timeout: Duration::from_secs(args.send_timeout_secs.max(1)),
            max_total_queue_bytes: args.max_total_queue_bytes.max(args.max_queue_bytes),
            max_frames_in_flight: args.max_frames_in_flight.max(1),
            header_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
            max_pending_connections: args.max_pending_connections.max(1),
            max_connections_per_client: args.max_connections_per_client,
            trusted_proxies: args.trusted_proxies,
            auth_timeout: Duration::from_secs(args.auth_timeout_secs.max(1)),
            max_unauthenticated: args.max_unauthenticated,
            max_connections: args.max_connections,
            idle_timeout: (args.idle_timeout_secs > 0).then(|| Duration::from_secs(args.idle_timeout_secs)),
            allowed_origins: list(&args.allowed_origins),
            max_push_events: args.max_push_events.max(1),
            max_open_stores: args.max_open_stores.max(1),
            idle_store_cache: args.idle_store_cache,
            forward_headers: list(&args.forward_headers).into_iter().map(|h| h.to_ascii_lowercase()).collect(),
        })
    }
}
