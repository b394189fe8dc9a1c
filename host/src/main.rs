//! The `livestore-sync` command.

use anyhow::Result;
use clap::Parser;
use livestore_sync::cli;
use livestore_sync::cli_args::{Cli, Command, DbCommand, ServeArgs, StoresCommand};
use livestore_sync::ServerConfig;
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

/// glibc gives every thread that allocates its own arena; sockets allocated on one tokio worker
/// and freed on another left 10,000 idle connections at 357 MiB RSS. Two arenas: 164 MiB,
/// with no measurable cost to push throughput on this 2-core machine (BENCHMARKS.md).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn main() -> Result<()> {
    limit_malloc_arenas();
    // Peek at --dev-vars before clap reads the environment it may fill.
    let cli_probe = Cli::try_parse().ok().map(|c| c.dev_vars);
    let dev_vars = cli_probe.unwrap_or_else(|| PathBuf::from(".dev.vars"));
    livestore_sync::dev_vars::load(&dev_vars).map_err(|e| anyhow::anyhow!("reading {}: {e}", dev_vars.display()))?;
    let cli = Cli::parse();
    // Not held while serving: the log writer needs stdout from other threads.
    let out = || std::io::stdout().lock();
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Db { data, command: DbCommand::Tables } => cli::db_tables(&data.data_dir, &mut out()),
        Command::Db { data, command: DbCommand::Execute { command, write } } => {
            cli::db_execute(&data.data_dir, &command, write, &mut out())
        }
        Command::Stores { data, command: StoresCommand::List { json } } => {
            cli::stores_list(&data.data_dir, json, &mut out())
        }
        Command::Stores { data, command: StoresCommand::Info { store, json } } => {
            cli::stores_info(&data.data_dir, &store, json, &mut out())
        }
        Command::Export { data, store, output } => {
            let n = cli::export(&data.data_dir, &store, output.as_deref())?;
            eprintln!("exported {n} events from {store:?}");
            Ok(())
        }
        Command::Import { data, store, file, replace } => {
            let n = cli::import(&data.data_dir, &store, &file, replace)?;
            eprintln!("imported {n} events into {store:?}");
            Ok(())
        }
        Command::Reset { data, store } => {
            let (removed, backend_id) = cli::reset(&data.data_dir, &store)?;
            println!("reset {store:?}: removed {removed} events, new backend id {backend_id}");
            Ok(())
        }
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let level = if std::env::var("DEBUG").is_ok_and(|d| !d.is_empty() && d != "0" && d != "false") {
        "debug".to_string()
    } else {
        args.log_level.clone()
    };
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    if args.log_format == "json" {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        use std::io::IsTerminal;
        tracing_subscriber::fmt().with_ansi(std::io::stdout().is_terminal()).with_env_filter(filter).init();
    }
    let hooks = livestore_sync::hooks::HookSettings {
        specs: args.hooks.iter().map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).collect(),
        vars: livestore_sync::hooks::parse_vars(&args.hook_vars, |k| std::env::var(k).ok())?,
        allow_hosts: args.hook_allow_hosts.iter().map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).collect(),
        cpu_deadline: std::time::Duration::from_millis(args.hook_cpu_ms.max(1)),
        wall_deadline: std::time::Duration::from_millis(args.hook_wall_ms.max(1)),
        memory_limit: args.hook_memory_mib.max(1) << 20,
        max_output_bytes: args.hook_max_output_bytes.max(64),
        http_timeout: std::time::Duration::from_millis(args.hook_http_timeout_ms.max(1)),
        ..Default::default()
    };
    let store_id_pattern = match args.store_id_pattern.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(
            livestore_sync::store_id::StoreIdPattern::new(p)
                .map_err(|e| anyhow::anyhow!("--store-id-pattern {p:?} is not a valid regular expression: {e}"))?,
        ),
        None => None,
    };
    let config = ServerConfig {
        hooks,
        store_id_pattern,
        host: args.host,
        port: args.port,
        data_dir: args.data_dir,
        auth_token: args.auth_token.filter(|t| !t.is_empty()),
        durability: args.durability,
        shards: args.shards,
        max_frame_bytes: args.max_frame_bytes,
        cors: args.cors,
        admin_secret: args.admin_secret.filter(|s| !s.is_empty()),
        max_queue_bytes: args.max_queue_bytes,
        send_timeout: std::time::Duration::from_secs(args.send_timeout_secs.max(1)),
        max_connections: args.max_connections,
        idle_timeout: (args.idle_timeout_secs > 0).then(|| std::time::Duration::from_secs(args.idle_timeout_secs)),
        allowed_origins: args.allowed_origins.iter().map(|o| o.trim().to_string()).filter(|o| !o.is_empty()).collect(),
        max_push_events: args.max_push_events.max(1),
        max_open_stores: args.max_open_stores.max(1),
        idle_store_cache: args.idle_store_cache,
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
