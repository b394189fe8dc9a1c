//! Runs the real LiveStore client (`@livestore/sync-cf@0.4.0`'s `makeWsSync`, Node) against a
//! livestore-sync server: `tests/client/real-client.test.mjs` under `node --test`.

use anyhow::{bail, Context, Result};
use livestore_sync_tests::{TestServer, TOKEN};
use std::path::PathBuf;
use std::process::Stdio;

/// Run one `node --test` file of tests/client against `server`; returns its stdout.
async fn node_test(file: &str, server: &TestServer) -> Result<String> {
    let client_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("client");
    if !client_dir.join("node_modules/@livestore/sync-cf").is_dir() {
        bail!(
            "the real client is not installed: run `npm ci --prefix {}` (scripts/test.sh does)",
            client_dir.display()
        );
    }
    let output = tokio::process::Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg(file)
        .current_dir(&client_dir)
        .env("LIVESTORE_SYNC_URL", server.ws_base())
        .env("LIVESTORE_SYNC_HTTP_URL", server.http_base())
        .env("LIVESTORE_SYNC_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running node (Node 20 is required for the real-client test)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(output.status.success(), "the real client's tests ({file}) failed:\n{stdout}\n{stderr}");
    Ok(stdout.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_livestore_client_syncs_through_the_server() -> Result<()> {
    let server = TestServer::start().await?;
    let stdout = node_test("real-client.test.mjs", &server).await?;
    assert!(stdout.contains("pass 5"), "expected all 5 real-client tests to pass:\n{stdout}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_livestore_http_client_syncs_through_the_server() -> Result<()> {
    let server = TestServer::start().await?;
    let stdout = node_test("http-client.test.mjs", &server).await?;
    assert!(stdout.contains("pass 2"), "expected both HTTP-client tests to pass:\n{stdout}");
    Ok(())
}
