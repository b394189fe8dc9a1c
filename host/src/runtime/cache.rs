//! The compiled component, cached on disk next to the data so restarts skip compilation.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The component's bytes, built from guest/ by build.rs.
pub static GUEST_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/guest.wasm"));
/// SHA-256 of [`GUEST_WASM`]; the Cloudflare build checks it to ship the same component.
pub const GUEST_SHA256: &str = include_str!(concat!(env!("OUT_DIR"), "/guest.sha256"));

/// Compiling the component takes ~130 ms (release); a cached `.cwasm` loads in ~1 ms.
pub fn load_component(engine: &Engine, cache_dir: Option<&Path>) -> Result<(Component, &'static str)> {
    let cached = cache_dir.map(|dir| cache_path(engine, dir));
    if let Some(path) = cached.as_ref().filter(|p| p.exists()) {
        // SAFETY: the file was written by `Component::serialize` of this exact component
        // and engine configuration (both are part of its name), in a directory we own.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(c) => return Ok((c, "cache")),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unusable component cache")
            }
        }
    }
    let component =
        Component::new(engine, GUEST_WASM).map_err(anyhow::Error::from).context("compiling the sync component")?;
    if let Some(path) = cached {
        if let Err(e) = write_cache(&component, &path) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the component cache");
        }
    }
    Ok((component, "compiled"))
}

fn cache_path(engine: &Engine, dir: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    dir.join(format!("sync-{}-{:016x}.cwasm", &GUEST_SHA256[..16], h.finish()))
}

fn write_cache(component: &Component, path: &Path) -> Result<()> {
    let bytes = component.serialize().map_err(anyhow::Error::from)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
