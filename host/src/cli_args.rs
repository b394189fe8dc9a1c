//! The command line (`clap`), kept in the library so the README's commands can be checked
//! against it in tests.

use crate::defaults;
use crate::storage::Durability;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// `--version`: the crate version and the hash of the embedded sync component (the Cloudflare
/// bundle's build checks it runs the same component).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (component sha256 ",
    include_str!(concat!(env!("OUT_DIR"), "/guest.sha256")),
    ")"
);

#[derive(Parser)]
#[command(name = "livestore-sync", version = VERSION, about = "LiveStore sync backend (wire-compatible with @livestore/sync-cf)")]
pub struct Cli {
    /// Config file with KEY=value lines (wrangler's `.dev.vars` format); fills unset environment
    /// variables. Default: `.dev.vars` if it exists; a file named here must exist.
    #[arg(long, global = true)]
    pub dev_vars: Option<PathBuf>,
    /// The data directory: the SQLite database (`sync.db`) and the compiled-component cache.
    /// Accepted before or after the command.
    #[arg(long, global = true, env = "LIVESTORE_SYNC_DATA_DIR", default_value = defaults::DATA_DIR)]
    pub data_dir: PathBuf,
    /// Keep the event logs in Postgres instead of the data directory's SQLite file
    /// (`postgres://user:password@host:5432/db`, or a key=value string): several nodes can then
    /// serve the same stores. The data directory still holds the compiled-component cache.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// PEM certificate(s) of the authority that signed Postgres' TLS certificate, trusted besides
    /// the public web roots (managed Postgres with its own CA). TLS itself follows the URL's
    /// `sslmode` (`prefer` by default, `require`, `disable`).
    #[arg(long, global = true, env = "DATABASE_CA_FILE")]
    pub database_ca_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The Postgres settings, when a URL is given.
    pub fn postgres(&self) -> Option<crate::storage::postgres::PgConfig> {
        let url = self.database_url.as_deref().filter(|u| !u.is_empty())?;
        Some(crate::storage::postgres::PgConfig { url: url.to_string(), ca_file: self.database_ca_file.clone() })
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the sync endpoint (WebSocket on any path: ws://HOST:PORT/?storeId=…&transport=ws).
    Serve(Box<ServeArgs>),
    /// Inspect the SQLite database.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// List stores and show one store's state.
    Stores {
        #[command(subcommand)]
        command: StoresCommand,
    },
    /// Write a store's events as JSON lines (stdout, or --output FILE).
    Export {
        /// The store id (quote it for the shell; `--` before an id that starts with `-`).
        store: String,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Import JSON lines (from `export`; FILE `-` reads stdin) as a store's log, atomically. The
    /// store gets the backend id in the file's header line, so its clients continue without a
    /// reset; a file without one (or `--new-backend-id`) gives it a new backend id.
    Import {
        /// The store to write (created if it does not exist).
        store: String,
        /// JSON lines from `export`; `-` reads stdin.
        file: PathBuf,
        /// Overwrite a store that already has events.
        #[arg(long)]
        replace: bool,
        /// Give the store a new backend id: every client of it resets (LiveStore's default
        /// `onBackendIdMismatch: 'reset'` drops its local data, unpushed events included).
        #[arg(long)]
        new_backend_id: bool,
    },
    /// Copy the database consistently (also beside a running server) into a new directory
    /// that `serve --data-dir` can use as it is.
    Backup {
        /// The new directory (its `sync.db` must not exist).
        to: PathBuf,
    },
    /// Clear a store's log and give it a new backend id (clients re-sync after BackendIdMismatchError).
    Reset {
        /// The store id.
        store: String,
    },
    /// Ask a running server's /health: exit 0 when it answers 200 (storage writable), else 1.
    /// For container health checks and scripts; needs no curl.
    Health {
        /// The server's port on this host.
        #[arg(long, env = "LIVESTORE_SYNC_PORT", default_value_t = defaults::PORT)]
        port: u16,
        /// Another URL to ask instead of http://127.0.0.1:PORT/health.
        #[arg(long)]
        url: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout_secs: u64,
    },
}

#[derive(Subcommand)]
pub enum DbCommand {
    /// List the tables.
    Tables,
    /// Run one SQL statement and print its rows (read-only unless --write).
    Execute {
        /// The SQL statement.
        #[arg(long)]
        command: String,
        /// Open the database for writing (refused while a server holds the data directory).
        #[arg(long)]
        write: bool,
    },
}

#[derive(Subcommand)]
pub enum StoresCommand {
    /// Every store with head, event count, last sync and backend id.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One store: head, backend id, event count, last sync, table.
    Info {
        /// The store id.
        store: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LIVESTORE_SYNC_HOST", default_value = defaults::HOST)]
    pub host: String,
    /// Port to listen on.
    #[arg(long, env = "LIVESTORE_SYNC_PORT", default_value_t = defaults::PORT)]
    pub port: u16,
    /// Require this token as the payload's `authToken` (`AUTH_TOKEN`, as with `@livestore/sync-cf`).
    #[arg(long, env = "AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// `normal` survives a process crash; `full` also survives power loss (fsync per push).
    #[arg(long, env = "LIVESTORE_SYNC_DURABILITY", value_enum, default_value_t = Durability::Normal)]
    pub durability: Durability,
    /// Store shard threads; 0 = one per CPU.
    #[arg(long, env = "LIVESTORE_SYNC_SHARDS", default_value_t = 0)]
    pub shards: usize,
    /// Largest accepted WebSocket message in bytes.
    #[arg(long, env = "LIVESTORE_SYNC_MAX_FRAME_BYTES", default_value_t = defaults::MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,
    /// Enables the admin endpoints (`/admin/stores/{id}`, `/admin/stores/{id}/reset`) for this Bearer token.
    #[arg(long, env = "ADMIN_SECRET", hide_env_values = true)]
    pub admin_secret: Option<String>,
    /// Answer CORS preflights (OPTIONS → 204) and allow any origin.
    #[arg(long, env = "LIVESTORE_SYNC_CORS", value_parser = clap::builder::BoolishValueParser::new())]
    pub cors: bool,
    /// Request header to keep with each connection for the component and hooks (repeatable),
    /// e.g. `--forward-header cookie --forward-header authorization`.
    #[arg(long = "forward-header", env = "LIVESTORE_SYNC_FORWARD_HEADERS", value_delimiter = ',')]
    pub forward_headers: Vec<String>,
    /// Unsent bytes a connection may queue before it is cut off with close code 1013.
    #[arg(long, env = "LIVESTORE_SYNC_MAX_QUEUE_BYTES", default_value_t = defaults::MAX_QUEUE_BYTES)]
    pub max_queue_bytes: usize,
    /// Unsent bytes all connections together may queue; past it, the connections holding the
    /// most are cut off first (close 1013).
    #[arg(long, env = "LIVESTORE_SYNC_MAX_TOTAL_QUEUE_BYTES", default_value_t = defaults::MAX_TOTAL_QUEUE_BYTES)]
    pub max_total_queue_bytes: usize,
    /// Frames one connection may have waiting for its store; past it the server stops reading
    /// from that socket until they are handled.
    #[arg(long, env = "LIVESTORE_SYNC_MAX_FRAMES_IN_FLIGHT", default_value_t = defaults::MAX_FRAMES_IN_FLIGHT)]
    pub max_frames_in_flight: usize,
    /// Seconds a client has to send a complete request head (the upgrade included); slower
    /// connections are closed.
    #[arg(long, env = "LIVESTORE_SYNC_HEADER_TIMEOUT_SECS", default_value_t = defaults::HEADER_TIMEOUT_SECS)]
    pub header_timeout_secs: u64,
    /// Connections that have not sent a complete request yet; past it the oldest is closed.
    #[arg(long, env = "LIVESTORE_SYNC_MAX_PENDING_CONNECTIONS", default_value_t = defaults::MAX_PENDING_CONNECTIONS)]
    pub max_pending_connections: usize,
    /// Per client address: WebSockets open at once, and connections still sending their first
    /// request (0: no limit). The address is the peer's, or `X-Forwarded-For`'s behind a
    /// `--trusted-proxy`.
    #[arg(long, env = "LIVESTORE_SYNC_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 0)]
    pub max_connections_per_client: usize,
    /// A reverse proxy's IP address (repeatable or comma-separated): only for connections from
    /// it is `X-Forwarded-For` believed.
    #[arg(long = "trusted-proxy", env = "LIVESTORE_SYNC_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Seconds a simple-protocol socket without a token in its URL has to send its `auth`
    /// message; nothing is opened for it before.
    #[arg(long, env = "LIVESTORE_SYNC_AUTH_TIMEOUT_SECS", default_value_t = defaults::AUTH_TIMEOUT_SECS)]
    pub auth_timeout_secs: u64,
    /// Simple-protocol sockets waiting for their `auth` message at once; more get 503.
    #[arg(long, env = "LIVESTORE_SYNC_MAX_UNAUTHENTICATED", default_value_t = defaults::MAX_UNAUTHENTICATED)]
    pub max_unauthenticated: usize,
    /// Seconds a socket write may take before the connection is dropped.
    #[arg(long, env = "LIVESTORE_SYNC_SEND_TIMEOUT_SECS", default_value_t = defaults::SEND_TIMEOUT_SECS)]
    pub send_timeout_secs: u64,
    /// WebSocket connections open at once; more get 503.
    #[arg(long, env = "LIVESTORE_SYNC_MAX_CONNECTIONS", default_value_t = defaults::MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Close connections that sent nothing for this many seconds (0: never). The LiveStore client pings every 10 s.
    #[arg(long, env = "LIVESTORE_SYNC_IDLE_TIMEOUT_SECS", default_value_t = defaults::IDLE_TIMEOUT_SECS)]
    pub idle_timeout_secs: u64,
    /// Allowed `Origin` header values (repeatable or comma-separated); requests from other origins get 403.
    #[arg(long = "allowed-origin", env = "LIVESTORE_SYNC_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// The most events one push may carry; larger pushes are rejected whole.
    #[arg(long, env = "LIVESTORE_SYNC_MAX_PUSH_EVENTS", default_value_t = defaults::MAX_PUSH_EVENTS)]
    pub max_push_events: u32,
    /// Store instances open at once; idle stores are evicted and reopened from storage.
    #[arg(long, env = "LIVESTORE_SYNC_MAX_OPEN_STORES", default_value_t = defaults::MAX_OPEN_STORES)]
    pub max_open_stores: usize,
    /// Idle store instances (no connections) kept warm for HTTP polling and reconnects (~200 KiB each).
    #[arg(long, env = "LIVESTORE_SYNC_IDLE_STORE_CACHE", default_value_t = defaults::IDLE_STORE_CACHE)]
    pub idle_store_cache: usize,
    /// A hook component to load (repeatable): `path.wasm` or `name=path.wasm`. Hooks run in
    /// `--hook` order; see "Customisation with hooks" in the README.
    #[arg(long = "hook", env = "LIVESTORE_SYNC_HOOKS", value_delimiter = ',')]
    pub hooks: Vec<String>,
    /// A value hooks read with `config.get` (repeatable): `NAME=VALUE`, or `NAME` to pass the
    /// server's environment variable (e.g. `--hook-var LIVESTORE_SECRET`).
    #[arg(long = "hook-var")]
    pub hook_vars: Vec<String>,
    /// A host hooks may reach over HTTP (repeatable): `host`, `host:port` or `*.domain`. None by default.
    #[arg(long = "hook-allow-host", env = "LIVESTORE_SYNC_HOOK_ALLOW_HOSTS", value_delimiter = ',')]
    pub hook_allow_hosts: Vec<String>,
    /// CPU time one hook call may use, in milliseconds.
    #[arg(long, env = "LIVESTORE_SYNC_HOOK_CPU_MS", default_value_t = defaults::HOOK_CPU_MS)]
    pub hook_cpu_ms: u64,
    /// Wall-clock time one hook call may take (outbound HTTP included), in milliseconds.
    #[arg(long, env = "LIVESTORE_SYNC_HOOK_WALL_MS", default_value_t = defaults::HOOK_WALL_MS)]
    pub hook_wall_ms: u64,
    /// Memory one hook instance may grow to, in MiB.
    #[arg(long, env = "LIVESTORE_SYNC_HOOK_MEMORY_MIB", default_value_t = defaults::HOOK_MEMORY_MIB)]
    pub hook_memory_mib: usize,
    /// The longest message a hook may return or log, in bytes.
    #[arg(long, env = "LIVESTORE_SYNC_HOOK_MAX_OUTPUT_BYTES", default_value_t = defaults::HOOK_MAX_OUTPUT_BYTES)]
    pub hook_max_output_bytes: usize,
    /// Connect and first-byte timeout of a hook's outbound HTTP request, in milliseconds.
    #[arg(long, env = "LIVESTORE_SYNC_HOOK_HTTP_TIMEOUT_MS", default_value_t = defaults::HOOK_HTTP_TIMEOUT_MS)]
    pub hook_http_timeout_ms: u64,
    /// Accept only store ids matching this regular expression (e.g. `^[a-zA-Z0-9_-]+$`) when a
    /// client connects; others get 400. Default: any non-empty id up to 1,024 UTF-8 bytes.
    #[arg(long, env = "LIVESTORE_SYNC_STORE_ID_PATTERN")]
    pub store_id_pattern: Option<String>,
    /// Log filter (e.g. `info`, `debug`, `livestore_sync=trace`); `DEBUG=*` means debug.
    #[arg(long, env = "LIVESTORE_SYNC_LOG", default_value = "info")]
    pub log_level: String,
    /// `text` or `json` (one JSON object per line).
    #[arg(long, env = "LIVESTORE_SYNC_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

#[cfg(test)]
mod tests {
    use super::{Cli, Command};
    use clap::Parser;

    /// Every command, argument and flag says what it is for.
    #[test]
    fn no_help_text_is_empty() {
        fn walk(cmd: &clap::Command, path: &str, empty: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if arg.get_help().is_none() && !["help", "version"].contains(&arg.get_id().as_str()) {
                    empty.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    empty.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), empty);
            }
        }
        let mut empty = Vec::new();
        walk(&<Cli as clap::CommandFactory>::command(), "livestore-sync", &mut empty);
        assert!(empty.is_empty(), "no help text: {empty:?}");
    }

    /// Boolean flags read from the environment take the usual spellings. (The only test that
    /// sets this variable.)
    #[test]
    fn booleans_from_the_environment() {
        for (value, on) in [("1", true), ("yes", true), ("true", true), ("0", false), ("no", false), ("false", false)] {
            std::env::set_var("LIVESTORE_SYNC_CORS", value);
            let parsed = Cli::try_parse_from(["livestore-sync", "serve"]);
            std::env::remove_var("LIVESTORE_SYNC_CORS");
            let Ok(Cli { command: Command::Serve(args), .. }) = parsed else { panic!("LIVESTORE_SYNC_CORS={value}") };
            assert_eq!(args.cors, on, "LIVESTORE_SYNC_CORS={value}");
        }
    }
}
