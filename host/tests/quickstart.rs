//! The README's quick start, followed as a reader would: the token in `.dev.vars`, `serve`, the
//! example LiveStore app (`examples/node-app`, `@livestore/adapter-node` + `makeWsSync`) run
//! twice under two names until each shows the other's todo, then `/health` and `stores list`.
//! The same app then syncs through the Cloudflare quick start (`wrangler dev --local`).

use anyhow::{bail, Context, Result};
use livestore_sync_tests::workerd::{cloudflare_dir, repo_root, Wrangler, WranglerConfig, WRANGLER_LOCK};
use livestore_sync_tests::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_livestore-sync");
const README: &str = include_str!("../../README.md");
const APP: &str = include_str!("../../examples/node-app/app.mjs");

/// The text of the README section whose heading is `title`, up to the next heading.
fn section(title: &str) -> &'static str {
    let start = README.find(title).unwrap_or_else(|| panic!("README has no section {title:?}"));
    let rest = &README[start + title.len()..];
    let end = rest.find("\n## ").into_iter().chain(rest.find("\n### ")).min().unwrap_or(rest.len());
    &rest[..end]
}

fn code_blocks(text: &str, lang: &str) -> Vec<String> {
    markdown_code_blocks(text, lang)
}

/// The quick start's `node app.mjs NAME TEXT` lines, as argument lists.
fn app_runs() -> Vec<Vec<String>> {
    code_blocks(section("### 2. Connect a LiveStore app"), "sh")
        .iter()
        .flat_map(|b| b.lines())
        .filter(|l| l.starts_with("node app.mjs "))
        .map(|l| shlex::split(l).expect("a shell line")[2..].to_vec())
        .collect()
}

/// The two app runs of each test start a Node process per app; the native and the worker test
/// take turns so that neither waits on the other's start-up on a 2-core machine.
static APPS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn app_dir() -> PathBuf {
    repo_root().join("examples/node-app")
}

#[test]
fn the_readme_shows_the_app_the_test_runs() {
    let shown = code_blocks(section("### 2. Connect a LiveStore app"), "js");
    assert_eq!(shown, vec![APP.trim_end().to_string()], "the README's app must be examples/node-app/app.mjs, verbatim");
    let setup = code_blocks(section("### 2. Connect a LiveStore app"), "sh");
    assert!(setup.iter().any(|b| b.contains("cd examples/node-app && npm ci")), "{setup:?}");
    assert_eq!(app_runs().len(), 2, "two app runs, under two names");
    let step1 = code_blocks(section("### 1. Run the server with a token"), "sh");
    assert!(step1.concat().contains("cargo run --release -p livestore-sync -- serve"), "{step1:?}");
    let step3 = code_blocks(section("### 3. Check it"), "sh").concat();
    assert!(
        step3.contains("curl -s http://127.0.0.1:8787/health")
            && step3.contains("cargo run --release -p livestore-sync -- stores list")
    );
}

/// The `.dev.vars` line of step 1, written where the server starts.
fn write_dev_vars(dir: &Path) -> Result<()> {
    let block = code_blocks(section("### 1. Run the server with a token"), "sh").concat();
    let line = block.lines().find(|l| l.starts_with("echo ")).context("step 1 writes .dev.vars with echo")?;
    let words = shlex::split(line).context("a shell line")?;
    assert_eq!(words[2..], [">", ".dev.vars"], "{line}");
    std::fs::write(dir.join(".dev.vars"), format!("{}\n", words[1]))?;
    Ok(())
}

/// Whether the apps' last lists agree and hold every app's todo.
fn converged(lasts: &[String], runs: &[Vec<String>]) -> bool {
    lasts.iter().all(|l| l == &lasts[0]) && runs.iter().all(|r| lasts[0].split(" | ").any(|x| x == r[1]))
}

/// One run of every quick-start app, each printing its todo list as it changes: the lists they
/// printed last, once all agree and hold every app's todo, or after `wait`.
async fn run_apps(url: &str, workdir: &Path, runs: &[Vec<String>], wait: Duration) -> Result<Vec<String>> {
    let mut children = Vec::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String)>();
    for (i, run) in runs.iter().enumerate() {
        let mut child = tokio::process::Command::new("node")
            .arg(app_dir().join("app.mjs"))
            .args(run)
            .current_dir(workdir)
            .env("SYNC_URL", url)
            .env_remove("AUTH_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting node (Node 20 or later)")?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(list) = line.strip_prefix("todos: ") {
                    let _ = tx.send((i, list.to_string()));
                }
            }
        });
        children.push(child);
    }
    let mut lasts = vec![String::new(); runs.len()];
    let deadline = tokio::time::Instant::now() + wait;
    while !converged(&lasts, runs) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((i, list))) => lasts[i] = list,
            _ => break,
        }
    }
    for mut child in children {
        let _ = child.kill().await;
    }
    Ok(lasts)
}

/// Run every quick-start app against `url` (each in `workdir`, so its local data lands there)
/// until each prints the same list, holding every app's todo; then stop them.
///
/// LiveStore 0.4.0's client now and then does not push a todo committed right after its first
/// pull (seen on a loaded machine with either server: the server's log shows no push from it).
/// A restarted app pushes what it has pending, as the README says, so the test restarts the
/// apps (each adding one more todo) when they have not converged after a while.
async fn apps_sync_through(url: &str, workdir: &Path) -> Result<()> {
    if !app_dir().join("node_modules/@livestore/adapter-node").is_dir() {
        bail!("the example app is not installed: run `npm ci --prefix examples/node-app` (scripts/test.sh does)");
    }
    let _turn = APPS.lock().await;
    let runs = app_runs();
    let mut rounds = Vec::new();
    for round in 1..=3 {
        let lasts = run_apps(url, workdir, &runs, Duration::from_secs(if round == 3 { 60 } else { 25 })).await?;
        let done = converged(&lasts, &runs);
        rounds.push(lasts);
        if done {
            if round > 1 {
                println!("the apps converged after {} restarts: {rounds:?}", round - 1);
            }
            break;
        }
        if round == 3 {
            bail!("the apps never printed the same list with every todo; their last lists per run: {rounds:?}");
        }
    }
    // Each app kept its local database under the directory it ran in.
    for run in &runs {
        assert!(workdir.join("data").join(&run[0]).is_dir(), "no local data for {}", run[0]);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_app_syncs_through_the_native_server() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    write_dev_vars(tmp.path())?;
    // The quick start's `serve`, on a free port instead of 8787 and its default data directory.
    let served = binary::serve(BIN, tmp.path(), &tmp.path().join(".livestore-sync"), &[], &[])?;

    // The token from .dev.vars is required: a wrong one is refused before any socket exists.
    let wrong = urlencode(&serde_json::json!({ "authToken": "wrong" }).to_string());
    let (status, _) =
        http_post(served.addr, &format!("/?storeId=quickstart&transport=http&payload={wrong}"), "[]").await?;
    assert_eq!(status, 400, "a wrong token must be refused");

    let synced = apps_sync_through(&format!("ws://{}", served.addr), tmp.path()).await;
    if let Err(e) = synced {
        let log: Vec<String> = served.log.try_iter().filter(|l| l.contains("push ") || l.contains("pull ")).collect();
        bail!("{e:#}\nthe server's push and pull lines:\n{}", log.join("\n"));
    }

    // Step 3: /health, `livestore-sync health`, and the store in `stores list`.
    let (status, text) =
        http_request(served.addr, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    assert_eq!(status, 200, "{text}");
    assert!(text.trim_end().ends_with("ok"), "{text}");
    let health = binary::command(BIN).args(["health", "--port", &served.addr.port().to_string()]).output()?;
    assert!(health.status.success(), "{}", String::from_utf8_lossy(&health.stderr));
    let list = binary::command(BIN).args(["stores", "list", "--json"]).current_dir(tmp.path()).output()?;
    let stdout = String::from_utf8_lossy(&list.stdout);
    let store: serde_json::Value = serde_json::from_str(stdout.lines().next().context("stores list is empty")?)?;
    assert_eq!(store["storeId"], "quickstart", "{stdout}");
    assert_eq!(store["head"], 2, "{stdout}");
    assert_eq!(store["eventCount"], 2, "{stdout}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_app_syncs_through_the_worker_under_wrangler_dev() -> Result<()> {
    let _turn = WRANGLER_LOCK.lock().await;
    let tmp = tempfile::tempdir()?;
    // The Cloudflare quick start: `npm run dev` in cloudflare/ with the token in .dev.vars (here
    // a --var, so the repository's cloudflare/.dev.vars is left alone).
    let worker = Wrangler::start(WranglerConfig {
        dir: cloudflare_dir(),
        config: None,
        persist: &tmp.path().join("state"),
        vars: &[("AUTH_TOKEN", TOKEN)],
        port: None,
        env: None,
    })
    .await?;
    let wrong = urlencode(&serde_json::json!({ "authToken": "wrong" }).to_string());
    let (status, _) =
        http_post(worker.addr, &format!("/?storeId=quickstart&transport=http&payload={wrong}"), "[]").await?;
    assert_eq!(status, 400, "a wrong token must be refused");
    let apps = tmp.path().join("apps");
    std::fs::create_dir(&apps)?;
    apps_sync_through(&worker.ws_base(), &apps)
        .await
        .with_context(|| format!("wrangler's log ends with:\n{}", worker.log_tail()))?;
    let (status, text) =
        http_request(worker.addr, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    assert_eq!(status, 200, "{text}");
    Ok(())
}

#[test]
fn health_fails_with_the_reason_when_no_server_answers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(1);
    let out = binary::command(BIN).args(["health", "--port", &port.to_string(), "--timeout-secs", "2"]).output();
    let out = out.expect("running livestore-sync health");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: connecting to 127.0.0.1:"), "{stderr}");
}
