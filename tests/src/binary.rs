//! The `livestore-sync` binary as a child process, for tests of the command itself (CLI,
//! `serve`, crash safety). The binary's path comes from the calling test
//! (`env!("CARGO_BIN_EXE_livestore-sync")` exists only in the host's own tests).

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// The binary with a clean environment: no inherited token, no colours.
pub fn command(bin: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_remove("AUTH_TOKEN").env("NO_COLOR", "1").env("LIVESTORE_SYNC_LOG_FORMAT", "text");
    cmd
}

/// Run a CLI command of `bin` on `data_dir` (also its working directory) with `envs`:
/// (success, stdout, stderr).
pub fn run_cli(bin: &str, data_dir: &Path, envs: &[(&str, &str)], args: &[&str]) -> Result<(bool, String, String)> {
    let out = command(bin)
        .args(args)
        .env("LIVESTORE_SYNC_DATA_DIR", data_dir)
        .envs(envs.iter().copied())
        .current_dir(data_dir)
        .output()
        .context("running livestore-sync")?;
    Ok((out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into()))
}

/// [`run_cli`] that must succeed; its stdout.
pub fn cli_ok(bin: &str, data_dir: &Path, envs: &[(&str, &str)], args: &[&str]) -> Result<String> {
    let (success, stdout, stderr) = run_cli(bin, data_dir, envs, args)?;
    anyhow::ensure!(success, "livestore-sync {args:?} failed:\n{stdout}\n{stderr}");
    Ok(stdout)
}

/// A running `livestore-sync serve`, killed when dropped; `log` has its stdout lines.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
    /// The lines before (and including) the "listening" line.
    pub startup: Vec<String>,
    pub log: Receiver<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        // A failed assertion must not leave a server behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `serve --port 0 --data-dir <data_dir> <extra…>` in `workdir` and wait for its
/// "listening" line.
pub fn serve(bin: &str, workdir: &Path, data_dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Result<Served> {
    let mut child = command(bin)
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .current_dir(workdir)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting livestore-sync serve")?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut startup = Vec::new();
    loop {
        let line =
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).context("no 'listening' line")?;
        let addr = line
            .split("listening on ws://")
            .nth(1)
            .map(|rest| rest.split_whitespace().next().unwrap_or_default().to_string());
        startup.push(line);
        if let Some(addr) = addr {
            return Ok(Served { child, addr: addr.parse()?, startup, log: rx });
        }
    }
}

/// The first line of `log` containing `needle`, within 20 s.
pub fn wait_for_log(log: &Receiver<String>, needle: &str) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .with_context(|| format!("no log line with {needle:?}"))?;
        if line.contains(needle) {
            return Ok(line);
        }
    }
}
