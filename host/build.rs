//! Builds the sync component (guest/) for wasm32-wasip2 and hands its bytes to the host,
//! so that one `cargo build` / `cargo run` builds everything.

use sha2::{Digest, Sha256};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ lives in the workspace root").to_path_buf();
    let guest = root.join("guest");
    for path in ["guest/src", "guest/Cargo.toml", "guest/Cargo.lock", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=LIVESTORE_SYNC_GUEST_WASM");

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let wasm = match env::var_os("LIVESTORE_SYNC_GUEST_WASM") {
        // Escape hatch for packagers: embed a prebuilt component.
        Some(prebuilt) => PathBuf::from(prebuilt),
        None => build_guest(&root, &guest),
    };
    let bytes = fs::read(&wasm).unwrap_or_else(|e| panic!("reading the guest component {}: {e}", wasm.display()));
    fs::write(out_dir.join("guest.wasm"), &bytes).expect("writing guest.wasm to OUT_DIR");
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    fs::write(out_dir.join("guest.sha256"), hex).expect("writing guest.sha256 to OUT_DIR");
}

fn build_guest(root: &Path, guest: &Path) -> PathBuf {
    ensure_wasm_target();
    // A target dir of its own: the guest has its own workspace and release profile, and
    // sharing the outer build's dir would deadlock on cargo's build lock.
    let target_dir = root.join("target").join("guest");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--target", TARGET, "--manifest-path"])
        .arg(guest.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's flags are for the host, not for the wasm guest.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_PROFILE_RELEASE_DEBUG")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .expect("running cargo to build the guest component");
    assert!(status.success(), "building the guest component (guest/) for {TARGET} failed");
    target_dir.join(TARGET).join("release").join("livestore_sync_guest.wasm")
}

/// `rust-toolchain.toml` names the target, but rustup does not install it on its own here
/// (RUSTUP_AUTO_INSTALL=0), so install it when the sysroot lacks it.
fn ensure_wasm_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string()));
    if libdir.as_deref().is_some_and(|d| d.is_dir()) {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (first build only)");
    let status = Command::new("rustup").args(["target", "add", TARGET]).status();
    match status {
        Ok(s) if s.success() => {}
        other => panic!(
            "the {TARGET} target is missing and `rustup target add {TARGET}` failed ({other:?}); install it and rebuild"
        ),
    }
}
