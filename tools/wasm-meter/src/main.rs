//! `wasm-meter FILE.wasm…`: compile a fuel budget and a memory cap into core modules, in place
//! (see the library's documentation). Modules with no code, or metered already, are left as
//! they are. `cloudflare/scripts/build.mjs` runs it on every hook it bundles.

use anyhow::{bail, Context, Result};
use std::path::Path;

fn main() -> Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() || files.iter().any(|f| f.starts_with('-')) {
        bail!("usage: wasm-meter FILE.wasm… (core modules, rewritten in place)");
    }
    for file in &files {
        let path = Path::new(file);
        let wasm = std::fs::read(path).with_context(|| format!("reading {file}"))?;
        match livestore_sync_wasm_meter::meter(&wasm).with_context(|| format!("metering {file}"))? {
            Some(out) => {
                let tmp = path.with_extension("wasm.metering");
                std::fs::write(&tmp, &out).with_context(|| format!("writing {}", tmp.display()))?;
                std::fs::rename(&tmp, path).with_context(|| format!("replacing {file}"))?;
                println!("{file}: metered ({} → {} bytes)", wasm.len(), out.len());
            }
            None => println!("{file}: no code to meter (or metered already), unchanged"),
        }
    }
    Ok(())
}
