//! The `livestore-sync` command.

use anyhow::Result;
use clap::Parser;
use livestore_sync::cli;
use livestore_sync::cli_args::{Cli, Command, DbCommand, ServeArgs, StoresCommand};
use livestore_sync::ServerConfig;
use std::path::PathBuf;
use std::process::ExitCode;
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

/// Every connection is a file descriptor; the usual soft limit (1,024) would refuse clients long
/// before `--max-connections`. Raise it to the hard limit, as servers commonly do.
fn raise_open_file_limit() {
    // SAFETY: getrlimit/setrlimit on this process with a properly initialised struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() -> ExitCode {
    raise_open_file_limit();
    limit_malloc_arenas();
    livestore_sync::fault_report::install();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        // `export … | head`: the reader left; nothing to report.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // The message chain, never a backtrace (even with RUST_BACKTRACE set).
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let pipe = Some(std::io::ErrorKind::BrokenPipe);
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().map(std::io::Error::kind) == pipe
            || c.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind) == pipe
    })
}

fn run() -> Result<()> {
    // Peek at --dev-vars before clap reads the environment it may fill.
    let named = Cli::try_parse().ok().and_then(|c| c.dev_vars);
    let dev_vars = named.clone().unwrap_or_else(|| PathBuf::from(".dev.vars"));
    let loaded = livestore_sync::dev_vars::load(&dev_vars, named.is_some());
    loaded.map_err(|e| anyhow::anyhow!("reading --dev-vars {}: {e}", dev_vars.display()))?;
    let cli = Cli::parse();
    let postgres = cli.postgres();
    let data_dir = cli.data_dir;
    let url = postgres.as_ref();
    // Not held while serving: the log writer needs stdout from other threads.
    let out = || std::io::stdout().lock();
    match cli.command {
        Command::Serve(args) => serve(*args, data_dir, postgres.clone()),
        Command::Db { command: DbCommand::Tables } => cli::db_tables(&data_dir, url, &mut out()),
        Command::Db { command: DbCommand::Execute { command, write } } => {
            cli::db_execute(&data_dir, url, &command, write, &mut out())
        }
        Command::Stores { command: StoresCommand::List { json } } => cli::stores_list(&data_dir, url, json, &mut out()),
        Command::Stores { command: StoresCommand::Info { store, json } } => {
            cli::stores_info(&data_dir, url, &store, json, &mut out())
        }
        Command::Export { store, output } => {
            let n = cli::export(&data_dir, url, &store, output.as_deref())?;
            eprintln!("exported {n} events from {store:?}");
            Ok(())
        }
        Command::Import { store, file, replace, new_backend_id } => {
            let backend = if new_backend_id { cli::ImportBackendId::New } else { cli::ImportBackendId::FromFile };
            let done = cli::import(&data_dir, url, &store, &file, replace, backend)?;
            let whose = if done.kept_backend_id {
                "the export's: its clients continue"
            } else {
                "new: its clients reset (onBackendIdMismatch)"
            };
            eprintln!("imported {} events into {store:?}; backend id {} ({whose})", done.events, done.backend_id);
            Ok(())
        }
        Command::Backup { to } => {
            let bytes = cli::backup(&data_dir, url, &to)?;
            eprintln!("backed up {} into {} ({bytes} bytes)", data_dir.display(), to.display());
            Ok(())
        }
        Command::Reset { store } => {
            let (removed, backend_id) = cli::reset(&data_dir, url, &store)?;
            println!("reset {store:?}: removed {removed} events, new backend id {backend_id}");
            Ok(())
        }
        Command::Health { port, url, timeout_secs } => {
            let url = url.unwrap_or_else(|| format!("http://127.0.0.1:{port}/health"));
            livestore_sync::health_check::check(&url, std::time::Duration::from_secs(timeout_secs))?;
            println!("ok: {url}");
            Ok(())
        }
    }
}

fn serve(
    args: ServeArgs,
    data_dir: PathBuf,
    postgres: Option<livestore_sync::storage::postgres::PgConfig>,
) -> Result<()> {
    // DEBUG=1 is for this program, not for every crate it uses (wasmtime's compiler alone
    // logs tens of thousands of lines).
    let level = if std::env::var("DEBUG").is_ok_and(|d| !d.is_empty() && d != "0" && d != "false") {
        "info,livestore_sync=debug".to_string()
    } else {
        args.log_level.clone()
    };
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    if args.log_format == "json" {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
        livestore_sync::runtime::telemetry::log_component_lines_as_fields(true);
    } else {
        use std::io::IsTerminal;
        tracing_subscriber::fmt().with_ansi(std::io::stdout().is_terminal()).with_env_filter(filter).init();
    }
    let config = ServerConfig::from_args(args, data_dir, postgres)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let auth = if config.auth_token.is_some() { "token required" } else { "no auth token (open)" };
        let data_dir = config.data_dir.clone();
        let postgres = config.postgres.as_ref().map(|pg| livestore_sync::storage::postgres::redacted_url(&pg.url));
        let open_to_all = config.auth_token.is_none() && config.hooks.specs.is_empty();
        let server = livestore_sync::start(config).await?;
        let data_dir = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
        let data = match postgres {
            Some(url) => format!("Postgres {url}, cache: {}", data_dir.display()),
            None => data_dir.display().to_string(),
        };
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            component_sha256 = livestore_sync::runtime::GUEST_SHA256.trim(),
            "livestore-sync listening on ws://{} (data: {data}, {auth})",
            server.local_addr(),
        );
        if open_to_all && !server.local_addr().ip().is_loopback() {
            tracing::warn!(
                "NO AUTH TOKEN on {}, which is not a loopback address: anyone who can reach this port can read \
                 and write every store. Set --auth-token (AUTH_TOKEN) or a validate-payload hook, or listen on \
                 127.0.0.1 behind a proxy that authenticates.",
                server.local_addr()
            );
        }
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
