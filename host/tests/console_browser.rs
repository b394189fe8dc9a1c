//! The operator console in a real browser (headless Chromium over the DevTools protocol): sign
//! in, find the store a real LiveStore client (the quick start's app) just pushed to and its
//! event, watch the live tail show a new push, and reset the store after typing its id.
//! Screenshots of the overview and a store page (1280 and 390 px wide) are written to
//! `target/console-screenshots/` for a person to look at.

use anyhow::{ensure, Context, Result};
use livestore_sync_tests::cdp::Browser;
use livestore_sync_tests::workerd::repo_root;
use livestore_sync_tests::{event, http_request, is_push_ack, TestServer};
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;

const SECRET: &str = "console-s3cret";
const STORE: &str = "quickstart";
const TODO: &str = "buy milk from the console test";

async fn admin_get(server: &TestServer, path: &str) -> Result<Value> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRET}\r\nConnection: close\r\n\r\n");
    let (status, raw) = http_request(server.addr, &req).await?;
    ensure!(status == 200, "{path}: {status} {raw}");
    Ok(serde_json::from_str(raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default())?)
}

/// Run the quick start's LiveStore app (`examples/node-app`) until the server holds its todo.
/// LiveStore 0.4.0's client now and then never pushes a todo committed right after its first
/// pull; a restarted app pushes what it has pending, so the app gets three tries.
async fn real_client_pushes_a_todo(server: &TestServer) -> Result<()> {
    let app = repo_root().join("examples/node-app");
    ensure!(
        app.join("node_modules/@livestore/adapter-node").is_dir(),
        "the app's packages are missing: npm ci --prefix examples/node-app (scripts/test.sh does)"
    );
    let workdir = tempfile::tempdir()?;
    for _ in 0..3 {
        let mut child = tokio::process::Command::new("node")
            .arg(app.join("app.mjs"))
            .args(["alice", TODO])
            .current_dir(workdir.path())
            .env("SYNC_URL", server.ws_base())
            .env_remove("AUTH_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting node")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            let events = admin_get(server, &format!("/admin/stores/{STORE}/events")).await;
            if events.is_ok_and(|e| e.to_string().contains(TODO)) {
                let _ = child.kill().await;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = child.kill().await;
    }
    anyhow::bail!("the LiveStore app never pushed its todo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_watches_a_store_and_resets_it_in_a_real_browser() -> Result<()> {
    let server = TestServer::builder().config(|c| c.admin_secret = Some(SECRET.into())).start().await?;
    real_client_pushes_a_todo(&server).await?;
    let shots = repo_root().join("target/console-screenshots");
    // localhost, not 127.0.0.1: browsers keep `Secure` cookies from http://localhost only.
    let console = format!("http://localhost:{}/admin/", server.addr.port());

    // Page weight: what the browser loads before any API call.
    let mut weight = 0;
    for path in ["/admin/", "/admin/console.js", "/admin/console.css"] {
        let (_, raw) =
            http_request(server.addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).await?;
        weight += raw.split_once("\r\n\r\n").map(|(_, b)| b.len()).unwrap_or_default();
    }
    println!("console page weight: {weight} bytes (HTML + JS + CSS, uncompressed)");

    let mut b = Browser::launch(1280, 900).await?;
    b.navigate(&console).await?;
    b.wait_for("document.querySelector('#sign-in:not([hidden]) #secret')", "the sign-in form", Duration::from_secs(20))
        .await?;
    // Keyboard only: the form opens with the secret field focused, Enter submits.
    ensure!(b.eval("document.activeElement.id").await? == "secret", "the secret field has the focus");
    b.type_text("not the secret").await?;
    b.press("Enter", 13).await?;
    b.wait_for("document.querySelector('#sign-in-error').textContent", "the refusal", Duration::from_secs(10)).await?;
    b.eval("document.querySelector('#secret').value = ''").await?;
    b.type_text(SECRET).await?;
    b.press("Enter", 13).await?;
    b.wait_for(
        "[...document.querySelectorAll('.card .label')].some(l => l.textContent === 'Component')",
        "the overview",
        Duration::from_secs(20),
    )
    .await?;
    let cookie_visible = b.eval("document.cookie").await?;
    ensure!(cookie_visible == "", "the session cookie is HttpOnly: {cookie_visible}");
    let overview = b.eval("document.querySelector('#view').innerText").await?.to_string();
    ensure!(overview.contains(env!("CARGO_PKG_VERSION")) && overview.contains("Events pushed"), "{overview}");

    // The stores table, then the store the app pushed to.
    b.eval("location.hash = '#/stores'").await?;
    b.wait_for(
        &format!("document.querySelector('a[href=\"#/store/{STORE}\"]')"),
        "the store in the table",
        Duration::from_secs(10),
    )
    .await?;
    b.eval(&format!("document.querySelector('a[href=\"#/store/{STORE}\"]').click()")).await?;
    b.wait_for(
        &format!("document.querySelector('#events') && document.querySelector('#events').innerText.includes({TODO:?})"),
        "the app's todo among the events",
        Duration::from_secs(10),
    )
    .await?;
    let args = b.eval("document.querySelector('#events pre').textContent").await?;
    ensure!(args.as_str().is_some_and(|a| a.contains("\n  \"text\"")), "args are pretty-printed: {args}");
    b.wait_for(
        "document.querySelector('#tail-status').textContent.startsWith('Following')",
        "the live tail",
        Duration::from_secs(10),
    )
    .await?;

    // A push now shows up in the live tail.
    let head = admin_get(&server, &format!("/admin/stores/{STORE}")).await?["head"].as_i64().context("head")?;
    let mut client = server.connect(STORE).await?;
    let (_, backend) = client.pull_seq_nums(STORE).await?;
    let mut pushed = event(head + 1, head);
    pushed["args"]["text"] = serde_json::json!("pushed while the console watched");
    let (_, ok) = client.push(STORE, vec![pushed], Some(&backend)).await?;
    ensure!(is_push_ack(&ok), "{ok}");
    b.wait_for(
        "document.querySelector('#tail').innerText.includes('pushed while the console watched')",
        "the new push in the live tail",
        Duration::from_secs(10),
    )
    .await?;
    b.screenshot(&shots.join("store-1280.png"), true).await?;
    b.viewport(390, 844, true).await?;
    b.eval("window.beforeReload = true; location.reload()").await?;
    b.wait_for(
        "!window.beforeReload && document.querySelector('#events') && document.readyState === 'complete'",
        "the store page at 390 px",
        Duration::from_secs(20),
    )
    .await?;
    let overflow = b.eval("document.documentElement.scrollWidth <= window.innerWidth").await?;
    ensure!(overflow == true, "the page fits 390 px (wide tables scroll inside their box)");
    b.screenshot(&shots.join("store-390.png"), true).await?;

    // Reset, behind typing the store id.
    b.eval("document.querySelector('#reset').click()").await?;
    b.wait_for("document.activeElement.id === 'confirm-id'", "the confirmation field focused", Duration::from_secs(5))
        .await?;
    b.type_text("quick").await?;
    ensure!(
        b.eval("document.querySelector('#confirm-reset').disabled").await? == true,
        "a partial id does not arm reset"
    );
    b.type_text("start").await?;
    ensure!(b.eval("document.querySelector('#confirm-reset').disabled").await? == false, "the full id arms reset");
    b.eval("document.querySelector('#confirm-reset').click()").await?;
    b.wait_for(
        "document.querySelector('[role=status]').textContent.startsWith('Reset:')",
        "the reset's result",
        Duration::from_secs(10),
    )
    .await?;
    ensure!(client.recv_close().await? == Some(1012), "the store's client is disconnected by the reset");
    let info = admin_get(&server, &format!("/admin/stores/{STORE}")).await?;
    ensure!(info["head"] == 0 && info["backendId"] != backend.as_str(), "{info}");
    // Back to the overview: by now its activity chart has samples (one every 5 s).
    b.viewport(1280, 900, false).await?;
    b.eval("location.hash = '#/'").await?;
    b.wait_for(
        "(ps => ps.length === 2 && ps.every(p => p.getAttribute('points').includes(' ')))([...document.querySelectorAll('.chart svg polyline')])",
        "the activity chart with two samples",
        Duration::from_secs(30),
    )
    .await?;
    b.screenshot(&shots.join("overview-1280.png"), true).await?;
    let lines = b.eval("document.querySelectorAll('.chart svg polyline').length").await?;
    ensure!(lines == 2, "a line for pushes and one for events: {lines}");
    for shot in ["overview-1280.png", "store-1280.png", "store-390.png"] {
        println!("screenshot: {}", shots.join(shot).display());
    }
    Ok(())
}
