//! The `livestore-sync` command.

use anyhow::Result;
use clap::{Parser, Subcommand};
use livestore_sync::{Durability, ServerConfig};
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "livestore-sync", version, about = "LiveStore sync backend (wire-compatible with @livestore/sync-cf)")]
struct Cli {
    /// Config file with KEY=value lines (the seed's `.dev.vars`); fills unset environment variables.
    #[arg(long, global = true, default_value = ".dev.vars")]
    dev_vars: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the sync endpoint (WebSocket on any path: ws://HOST:PORT/?storeId=…&transport=ws).
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LIVESTORE_SYNC_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on.
    #[arg(long, env = "LIVESTORE_SYNC_PORT", default_value_t = 8787)]
    port: u16,
    /// Directory for the SQLite database (sync.db) and the compiled-component cache.
    #[arg(long, env = "LIVESTORE_SYNC_DATA_DIR", default_value = ".livestore-sync")]
    data_dir: PathBuf,
    /// Require this token as the payload's `authToken` (the seed's AUTH_TOKEN).
    #[arg(long, env = "AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// `normal` survives a process crash; `full` also survives power loss (fsync per push).
    #[arg(long, env = "LIVESTORE_SYNC_DURABILITY", value_enum, default_value_t = Durability::Normal)]
    durability: Durability,
    /// Store shard threads; 0 = one per CPU.
    #[arg(long, env = "LIVESTORE_SYNC_SHARDS", default_value_t = 0)]
    shards: usize,
    /// Largest accepted WebSocket message in bytes.
    #[arg(long, env = "LIVESTORE_SYNC_MAX_FRAME_BYTES", default_value_t = 1 << 20)]
    max_frame_bytes: usize,
    /// Answer CORS preflights (OPTIONS → 204) and allow any origin.
    #[arg(long, env = "LIVESTORE_SYNC_CORS")]
    cors: bool,
    /// Request header to keep with each connection for the component and hooks (repeatable),
    /// e.g. `--forward-header cookie --forward-header authorization`.
    #[arg(long = "forward-header", env = "LIVESTORE_SYNC_FORWARD_HEADERS", value_delimiter = ',')]
    forward_headers: Vec<String>,
    /// Log filter (e.g. `info`, `debug`, `livestore_sync=trace`); `DEBUG=*` means debug.
    #[arg(long, env = "LIVESTORE_SYNC_LOG", default_value = "info")]
    log_level: String,
}

fn main() -> Result<()> {
    // Peek at --dev-vars before clap reads the environment it may fill.
    let cli_probe = Cli::try_parse().ok().map(|c| c.dev_vars);
    let dev_vars = cli_probe.unwrap_or_else(|| PathBuf::from(".dev.vars"));
    livestore_sync::dev_vars::load(&dev_vars).map_err(|e| anyhow::anyhow!("reading {}: {e}", dev_vars.display()))?;
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let level = if std::env::var("DEBUG").is_ok_and(|d| !d.is_empty() && d != "0" && d != "false") {
        "debug".to_string()
    } else {
        args.log_level.clone()
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let config = ServerConfig {
        host: args.host,
        port: args.port,
        data_dir: args.data_dir,
        auth_token: args.auth_token.filter(|t| !t.is_empty()),
        durability: args.durability,
        shards: args.shards,
        max_frame_bytes: args.max_frame_bytes,
        cors: args.cors,
        forward_headers: args.forward_headers.iter().map(|h| h.trim().to_ascii_lowercase()).collect(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let auth = if config.auth_token.is_some() { "token required" } else { "no auth token (open)" };
        let data_dir = config.data_dir.clone();
        let server = livestore_sync::start(config).await?;
        tracing::info!(
            "livestore-sync listening on ws://{} (data: {}, {auth})",
            server.local_addr(),
            data_dir.display()
        );
        shutdown_signal().await;
        tracing::info!("shutting down: closing connections, finishing queued pushes");
        server.shutdown().await?;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
