//! The example hook components (hooks/), built for wasm32-wasip2 once per test binary.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The path of `hooks/<crate>`'s component (e.g. `static_token`), building the hooks first.
pub fn hook_wasm(name: &str) -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT.get_or_init(build).as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = dir.join(format!("{name}.wasm"));
    if !path.exists() {
        bail!("no hook component {}", path.display());
    }
    Ok(path)
}

fn build() -> Result<PathBuf, String> {
    let root = crate::workerd::repo_root();
    let target = root.join("target").join("hooks");
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--locked", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(root.join("hooks/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .context("running cargo to build hooks/")
        .map_err(|e| format!("{e:#}"))?;
    if !status.success() {
        return Err("building the example hooks (hooks/) for wasm32-wasip2 failed".to_string());
    }
    Ok(target.join("wasm32-wasip2").join("release"))
}
