//! `wrangler dev --local` as a test server: the Cloudflare home (cloudflare/) or the reference
//! worker, on local workerd, with its state in a directory the test owns.

use anyhow::{bail, Context, Result};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Wrangler instances are heavy (node + workerd); tests take turns.
pub static WRANGLER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the repository").to_path_buf()
}

pub fn cloudflare_dir() -> PathBuf {
    repo_root().join("cloudflare")
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub struct Wrangler {
    child: Option<tokio::process::Child>,
    pub addr: SocketAddr,
    log: PathBuf,
}

pub struct WranglerConfig<'a> {
    /// The directory wrangler runs in (module resolution starts there).
    pub dir: PathBuf,
    /// `-c <file>`; wrangler.toml in `dir` when `None`.
    pub config: Option<&'a Path>,
    pub persist: &'a Path,
    pub vars: &'a [(&'a str, &'a str)],
    /// Reuse a port (a restart on the same address).
    pub port: Option<u16>,
    /// `--env <name>` (wrangler.toml's `[env.d1]` for D1 storage).
    pub env: Option<&'a str>,
}

impl Wrangler {
    pub async fn start(cfg: WranglerConfig<'_>) -> Result<Wrangler> {
        let bin = cloudflare_dir().join("node_modules/.bin/wrangler");
        if !bin.exists() {
            bail!("wrangler is not installed: run `npm ci --prefix cloudflare` (scripts/test.sh does)");
        }
        if !cloudflare_dir().join("gen/guest.js").exists() {
            bail!("the Cloudflare bundle is not built: run `node cloudflare/scripts/build.mjs` (scripts/test.sh does)");
        }
        let port = match cfg.port {
            Some(p) => p,
            None => free_port()?,
        };
        let log = cfg.persist.with_extension(format!("wrangler-{port}.log"));
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.current_dir(&cfg.dir)
            .args(["dev", "--local", "--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--inspector-port", &free_port()?.to_string(), "--show-interactive-dev-session=false"])
            .arg("--persist-to")
            .arg(cfg.persist);
        if let Some(config) = cfg.config {
            cmd.arg("-c").arg(config);
        }
        if let Some(env) = cfg.env {
            cmd.args(["--env", env]);
        }
        for (k, v) in cfg.vars {
            cmd.args(["--var", &format!("{k}:{v}")]);
        }
        cmd.env("WRANGLER_SEND_METRICS", "false")
            .env("CI", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().context("starting wrangler dev")?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut w = Wrangler { child: Some(child), addr, log };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            if crate::http_request(addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.is_ok() {
                return Ok(w);
            }
            if let Some(status) = w.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("wrangler dev exited ({status}) before serving:\n{}", w.log_tail());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("wrangler dev did not serve within 90 s:\n{}", w.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn ws_base(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn http_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGKILL wrangler and workerd (its process group) and wait for the port to close.
    pub async fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
            }
            let _ = child.wait().await;
        }
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(self.addr).await.is_err() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("port {} still open after killing wrangler", self.addr.port())
    }
}

impl Drop for Wrangler {
    fn drop(&mut self) {
        if let Some(pid) = self.child.as_ref().and_then(|c| c.id()) {
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
        }
    }
}
