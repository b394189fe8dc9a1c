//! The deployment files in `deploy/`: the systemd unit passes `systemd-analyze verify`, and the
//! container build gets what it needs. No container runtime can run here, so the image build is
//! checked by its parts: the build context the root `.dockerignore` leaves is a complete cargo
//! workspace holding every source the binary is built from, and the Dockerfile builds, runs and
//! checks the health of the binary with commands that exist.

use anyhow::{bail, Context, Result};
use livestore_sync_tests::workerd::repo_root;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_livestore-sync");
const DOCKERFILE: &str = include_str!("../../deploy/Dockerfile");
const DOCKERIGNORE: &str = include_str!("../../.dockerignore");

#[test]
fn the_systemd_unit_verifies() -> Result<()> {
    let unit = std::fs::read_to_string(repo_root().join("deploy/livestore-sync.service"))?;
    let exec = "ExecStart=/usr/local/bin/livestore-sync serve";
    assert!(unit.contains(exec), "the unit runs the installed binary");
    for needed in ["StateDirectory=livestore-sync", "EnvironmentFile=-/etc/livestore-sync/env", "KillSignal=SIGTERM"] {
        assert!(unit.contains(needed), "the unit has {needed}");
    }
    // verify checks that ExecStart exists: point it at the binary under test.
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("livestore-sync.service");
    std::fs::write(&path, unit.replace(exec, &format!("ExecStart={BIN} serve")))?;
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .context("systemd-analyze (Debian's systemd package; scripts/test.sh installs it)")?;
    let said = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify:\n{said}");
    Ok(())
}

/// `.dockerignore` patterns as Docker reads them (Go `filepath.Match` plus `**`), enough for the
/// forms the file uses: `dir/`, `**/name/`, `**/*.ext`, `name`.
fn ignored(path: &str) -> bool {
    let patterns: Vec<&str> =
        DOCKERIGNORE.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    // A path is excluded when it or any of its parent directories matches.
    let parts: Vec<&str> = path.split('/').collect();
    (1..=parts.len()).any(|n| {
        let prefix = parts[..n].join("/");
        patterns.iter().any(|p| glob_match(p.trim_end_matches('/'), &prefix))
    })
}

fn glob_match(pattern: &str, path: &str) -> bool {
    if let Some(rest) = pattern.strip_prefix("**/") {
        let segments: Vec<&str> = path.split('/').collect();
        return (0..segments.len()).any(|i| glob_match(rest, &segments[i..].join("/")));
    }
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), path.chars().collect());
    fn go(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len()).take_while(|&i| i == 0 || s[i - 1] != '/').any(|i| go(&p[1..], &s[i..])),
            Some(c) => s.first() == Some(c) && go(&p[1..], &s[1..]),
        }
    }
    go(&p, &s)
}

#[test]
fn the_dockerignore_reads_as_docker_does() {
    for (path, out) in [
        ("target/release/livestore-sync", true),
        ("guest/target/x", true),
        ("tests/client/node_modules/ws/index.js", true),
        ("cloudflare/.dev.vars", true),
        ("host/src/main.rs", false),
        ("guest/src/lib.rs", false),
        ("guest/fuzz/Cargo.toml", true),
        ("tests/Cargo.toml", false),
    ] {
        assert_eq!(ignored(path), out, "{path}");
    }
}

#[test]
fn the_image_build_context_is_a_complete_workspace() -> Result<()> {
    let root = repo_root();
    let files = Command::new("git").args(["ls-files", "-z"]).current_dir(&root).output()?;
    let files = String::from_utf8(files.stdout)?;
    let files: Vec<&str> = files.split('\0').filter(|f| !f.is_empty()).collect();
    assert!(files.len() > 100, "git ls-files listed {} files", files.len());
    let context = tempfile::tempdir()?;
    let mut kept = 0;
    for file in &files {
        if ignored(file) {
            continue;
        }
        let to = context.path().join(file);
        std::fs::create_dir_all(to.parent().context("a parent")?)?;
        std::fs::copy(root.join(file), &to).with_context(|| format!("copying {file}"))?;
        kept += 1;
    }
    // What the binary is built from: the host, the guest component its build script compiles,
    // the WIT and shared SQL both include.
    for file in &files {
        let needed = ["host/", "wit/", "schema/"].iter().any(|d| file.starts_with(d))
            || (file.starts_with("guest/") && !file.starts_with("guest/fuzz/"));
        if needed && ignored(file) {
            bail!("the build needs {file}, but .dockerignore leaves it out");
        }
    }
    // `cargo build --locked -p livestore-sync` reads every member's manifest and the lockfile.
    for dir in [context.path().to_path_buf(), context.path().join("guest")] {
        let out = Command::new("cargo")
            .args(["metadata", "--locked", "--offline", "--format-version", "1", "--no-deps"])
            .current_dir(&dir)
            .output()?;
        assert!(
            out.status.success(),
            "cargo metadata in the context ({}):\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(kept < files.len(), "the .dockerignore leaves something out");
    assert!(!context.path().join(".dev.vars").exists() && !Path::new(&context.path().join("target")).exists());
    Ok(())
}

#[test]
fn the_dockerfile_builds_runs_and_checks_with_real_commands() -> Result<()> {
    assert!(DOCKERFILE.contains("cargo build --release --locked -p livestore-sync"), "the release build");
    assert!(DOCKERFILE.contains("rustup target add wasm32-wasip2"), "the guest's target");
    let toolchain = std::fs::read_to_string(repo_root().join("Cargo.toml"))?;
    let rust_version = toolchain
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .context("rust-version in Cargo.toml")?
        .trim_matches('"');
    assert!(
        DOCKERFILE.contains(&format!("rust:{rust_version}-slim")),
        "the builder image is the pinned Rust {rust_version}"
    );
    for line in ["USER ${APP_UID}:${APP_UID}", "VOLUME /data", "STOPSIGNAL SIGTERM", "ENTRYPOINT [\"livestore-sync\"]"]
    {
        assert!(DOCKERFILE.contains(line), "the Dockerfile has {line}");
    }
    // The image's commands parse as the binary reads them.
    use clap::Parser;
    let health =
        DOCKERFILE.lines().find(|l| l.contains("CMD [\"livestore-sync\", \"health\"]")).context("a health check")?;
    assert!(health.trim_start().starts_with("CMD"), "{health}");
    for args in [vec!["livestore-sync", "health"], vec!["livestore-sync", "serve"], vec!["livestore-sync", "--version"]]
    {
        if let Err(e) = livestore_sync::cli_args::Cli::try_parse_from(&args) {
            if e.kind() != clap::error::ErrorKind::DisplayVersion {
                bail!("{args:?} does not parse: {e}");
            }
        }
    }
    Ok(())
}
