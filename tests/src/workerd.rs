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

/// A copy of cloudflare/ in `tmp` whose bundle includes hook components
/// (`scripts/build.mjs --hook`; the default bundle has none), built with `specs` (`name=path,…`).
/// Returns the copy's directory, or the build's error output.
pub async fn bundle_with_hooks(tmp: &Path, specs: &str) -> Result<PathBuf> {
    let cf = tmp.join("cf");
    std::fs::create_dir_all(&cf)?;
    for item in ["src", "scripts"] {
        let (from, to) = (cloudflare_dir().join(item), cf.join(item));
        std::fs::create_dir_all(&to)?;
        for entry in std::fs::read_dir(&from)? {
            let entry = entry?;
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    for file in ["wrangler.toml", "package.json"] {
        std::fs::copy(cloudflare_dir().join(file), cf.join(file))?;
    }
    std::os::unix::fs::symlink(cloudflare_dir().join("node_modules"), cf.join("node_modules"))?;
    // The build reads the WIT package version (wit/) and the shared SQL (schema/) from the repository.
    for shared in ["wit", "schema"] {
        std::os::unix::fs::symlink(repo_root().join(shared), cf.join("..").join(shared))?;
    }
    let guest = repo_root().join("target/guest/wasm32-wasip2/release/livestore_sync_guest.wasm");
    let out = tokio::process::Command::new("node")
        .arg(cf.join("scripts/build.mjs"))
        .env("LIVESTORE_SYNC_GUEST_WASM", &guest)
        .env("LIVESTORE_SYNC_CF_HOOKS", specs)
        .env("LIVESTORE_SYNC_WASM_METER", wasm_meter().await?)
        .output()
        .await?;
    if !out.status.success() {
        bail!("bundling the hooks failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(cf)
}

/// A worker built by [`bundle_with_hooks`], run with `vars`.
pub async fn worker_with_hooks(tmp: &Path, specs: &str, vars: &[(&str, &str)]) -> Result<Wrangler> {
    let cf = bundle_with_hooks(tmp, specs).await?;
    Wrangler::start(WranglerConfig { dir: cf, config: None, persist: &tmp.join("state"), vars, port: None, env: None })
        .await
}

/// `wasm-meter` as `cargo test --workspace` builds it (its crate has an integration test, so the
/// binary is built with the workspace's features), built here when a narrower run did not.
pub async fn wasm_meter() -> Result<PathBuf> {
    let bin = repo_root().join("target/debug/wasm-meter");
    if !bin.exists() {
        let status = tokio::process::Command::new("cargo")
            .args(["build", "--locked", "--quiet", "-p", "livestore-sync-wasm-meter"])
            .current_dir(repo_root())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "building wasm-meter failed");
    }
    Ok(bin)
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

    /// Everything wrangler and the worker printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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
