//! The Cloudflare home (cloudflare/) under local workerd (`wrangler dev --local`): the real
//! client and the raw-frame conformance suite on DO SQLite and on D1, a restart, an eviction with open sockets (hibernation), and a
//! D1 database written by the reference `@livestore/sync-cf` read and extended by this worker.

use anyhow::{bail, ensure, Context, Result};
use livestore_sync_tests::workerd::{cloudflare_dir, repo_root, Wrangler, WranglerConfig, WRANGLER_LOCK};
use livestore_sync_tests::{
    ack, assert_bad_store_ids_are_refused, chain, conformance, http_request, node_test, pull_request, seq_nums,
    sync_url, unique_store, urlencode, WsClient, TOKEN,
};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

async fn worker(persist: &Path, storage: &str, port: Option<u16>) -> Result<Wrangler> {
    worker_with(persist, storage, port, &[]).await
}

async fn worker_with(persist: &Path, storage: &str, port: Option<u16>, extra: &[(&str, &str)]) -> Result<Wrangler> {
    // Set here, not in cloudflare/.dev.vars: a fresh clone has none.
    let mut vars = vec![("LIVESTORE_SYNC_TEST_ROUTES", "1"), ("AUTH_TOKEN", TOKEN)];
    vars.extend_from_slice(extra);
    // D1 storage is wrangler.toml's `d1` environment, as the README runs it.
    let env = match storage {
        "do-sqlite" => None,
        "d1" => Some("d1"),
        other => bail!("unknown storage {other:?}"),
    };
    Wrangler::start(WranglerConfig { dir: cloudflare_dir(), config: None, persist, vars: &vars, port, env }).await
}

async fn connect(w: &Wrangler, store: &str) -> Result<WsClient> {
    WsClient::connect(&sync_url(&w.ws_base(), store, TOKEN)).await
}

/// Open a live pull from `cursor` and read until it is caught up; returns the seqNums seen
/// and the backend id.
async fn live_pull(c: &mut WsClient, store: &str, cursor: Option<(&str, i64)>) -> Result<(String, Vec<i64>, String)> {
    let id = c.id();
    c.send(&pull_request(&id, store, cursor, true)).await?;
    let mut seen = Vec::new();
    loop {
        let f = c.recv_for(&id).await?;
        ensure!(f["_tag"] == "Chunk", "live pull failed: {f}");
        let resp = &f["values"][0];
        seen.extend(seq_nums(resp));
        c.send(&ack(&id)).await?;
        if resp["pageInfo"]["_tag"] == "NoMore" {
            return Ok((id, seen, resp["backendId"].as_str().unwrap_or_default().to_string()));
        }
    }
}

async fn real_client_suite(storage: &str) -> Result<()> {
    let _turn = WRANGLER_LOCK.lock().await;
    let tmp = tempfile::tempdir()?;
    let w = worker(&tmp.path().join("state"), storage, None).await?;
    let (_, health) = http_request(w.addr, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    ensure!(
        health.contains(livestore_sync::runtime::GUEST_SHA256),
        "the worker must run the component the native host embeds ({}): {health}",
        livestore_sync::runtime::GUEST_SHA256
    );
    let ws = node_test("real-client.test.mjs", &w.ws_base(), &w.http_base()).await;
    let http = node_test("http-client.test.mjs", &w.ws_base(), &w.http_base()).await;
    let ids = node_test("store-ids.test.mjs", &w.ws_base(), &w.http_base()).await;
    let (ws, http) = (ws.with_context(|| w.log_tail())?, http.with_context(|| w.log_tail())?);
    let ids = ids.with_context(|| w.log_tail())?;
    ensure!(ws.contains("pass 5"), "expected all 5 real-client tests to pass:\n{ws}");
    ensure!(http.contains("pass 2"), "expected both HTTP-client tests to pass:\n{http}");
    ensure!(ids.contains("pass 2"), "expected both store-id tests to pass:\n{ids}");
    assert_bad_store_ids_are_refused(w.addr).await.with_context(|| w.log_tail())?;
    // The raw-frame suite the native server runs, against this home.
    conformance::run_all(&conformance::Endpoint { addr: w.addr }).await.with_context(|| w.log_tail())?;
    // Without CORS configured, responses carry no CORS headers (as with enableCORS: false).
    let (status, raw) = http_request(w.addr, "OPTIONS /?storeId=s&transport=http HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\nConnection: close\r\n\r\n").await?;
    ensure!(!raw.to_ascii_lowercase().contains("access-control-allow-origin"), "{status} {raw}");
    Ok(())
}

/// `CORS` and `ALLOWED_ORIGINS` on the Worker behave like the native `--cors` and
/// `--allowed-origin`: a browser's preflight gets 204, responses name the allowed origin with
/// `Vary: Origin`, other origins get 403, and a cross-origin HTTP-transport pull works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_on_the_worker_like_the_native_server() -> Result<()> {
    let _turn = WRANGLER_LOCK.lock().await;
    let tmp = tempfile::tempdir()?;
    let extra = [("CORS", "true"), ("ALLOWED_ORIGINS", "https://app.example")];
    let w = worker_with(&tmp.path().join("state"), "do-sqlite", None, &extra).await?;
    let preflight = "OPTIONS /?storeId=s&transport=http HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n";
    let (status, raw) = http_request(w.addr, preflight).await?;
    let lower = raw.to_ascii_lowercase();
    ensure!(status == 204, "{raw}");
    ensure!(
        lower.contains("access-control-allow-origin: https://app.example") && lower.contains("vary: origin"),
        "{raw}"
    );
    ensure!(lower.contains("access-control-allow-headers: content-type"), "{raw}");
    let payload = urlencode(&urlencode(&json!({ "authToken": TOKEN }).to_string()));
    let body = r#"{"_tag":"Request","id":"1","tag":"SyncHttpRpc.Pull","payload":{"storeId":"s","cursor":{"_tag":"None"}},"headers":[]}"#;
    let pull = format!(
        "POST /?storeId=s&payload={payload}&transport=http HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, raw) = http_request(w.addr, &pull).await?;
    ensure!(
        status == 200 && raw.to_ascii_lowercase().contains("access-control-allow-origin: https://app.example"),
        "{raw}"
    );
    ensure!(raw.contains("NoMore"), "{raw}");
    let evil = "GET /health HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nConnection: close\r\n\r\n";
    let (status, raw) = http_request(w.addr, evil).await?;
    ensure!(status == 403, "{raw}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_client_syncs_through_the_worker_on_do_sqlite() -> Result<()> {
    real_client_suite("do-sqlite").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_client_syncs_through_the_worker_on_d1() -> Result<()> {
    real_client_suite("d1").await
}

/// workerd restarts (every object evicted, every socket dropped): clients reconnect, live
/// pulls resume from their cursor, head and backend id are intact.
async fn restart(storage: &str) -> Result<()> {
    let _turn = WRANGLER_LOCK.lock().await;
    let tmp = tempfile::tempdir()?;
    let persist = tmp.path().join("state");
    let mut w = worker(&persist, storage, None).await?;
    let store = unique_store("cf-restart");
    let mut a = connect(&w, &store).await?;
    let (_, ok) = a.push(&store, chain(1, 3), None).await?;
    ensure!(ok["exit"]["_tag"] == "Success", "{ok}");
    let mut b = connect(&w, &store).await?;
    let (_, seen, backend) = live_pull(&mut b, &store, None).await?;
    ensure!(seen == vec![1, 2, 3], "{seen:?}");

    w.kill().await?;
    ensure!(b.recv_within(Duration::from_secs(5)).await.is_err(), "the socket must drop with workerd");
    // Restarted with the setup guide's stricter store-id rule: other ids are refused at connect.
    let pattern = ("STORE_ID_PATTERN", "^[a-zA-Z0-9-_]+$");
    let w = worker_with(&persist, storage, Some(w.port()), &[pattern]).await?;
    let (status, body) = http_request(
        w.addr,
        "POST /?storeId=team%201&transport=http HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await?;
    let refusal = r#"invalid storeId "team 1": this server only accepts ids matching ^[a-zA-Z0-9-_]+$"#;
    ensure!(status == 400 && body.contains(refusal), "{status}: {body}");

    let mut b = connect(&w, &store).await?;
    let (live, seen, backend_after) = live_pull(&mut b, &store, Some((&backend, 3))).await?;
    ensure!(seen.is_empty(), "nothing new after the cursor: {seen:?}");
    ensure!(backend_after == backend, "backend id changed across the restart: {backend} → {backend_after}");
    let mut a = connect(&w, &store).await?;
    let (_, stale) = a.push(&store, chain(3, 3), Some(&backend)).await?;
    ensure!(stale["exit"]["_tag"] == "Failure", "the head must still be 3: {stale}");
    let (_, ok) = a.push(&store, chain(4, 5), Some(&backend)).await?;
    ensure!(ok["exit"]["_tag"] == "Success", "{ok}");
    let f = b.recv_for(&live).await?;
    ensure!(seq_nums(&f["values"][0]) == vec![4, 5], "the resumed live pull gets the new events: {f}");
    let (all, _) = a.pull_seq_nums(&store).await?;
    ensure!(all == vec![1, 2, 3, 4, 5], "{all:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_keeps_head_and_backend_id_on_do_sqlite() -> Result<()> {
    restart("do-sqlite").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_keeps_head_and_backend_id_on_d1() -> Result<()> {
    restart("d1").await
}

/// The object forgets everything in memory while its sockets stay open (what a hibernation
/// eviction does): a caught-up live pull, a catch-up waiting for its Ack and an authenticated
/// simple-protocol client all go on as if nothing happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_sockets_survive_an_eviction() -> Result<()> {
    let _turn = WRANGLER_LOCK.lock().await;
    let tmp = tempfile::tempdir()?;
    let w = worker(&tmp.path().join("state"), "do-sqlite", None).await?;
    let store = unique_store("cf-evict");
    let mut pusher = connect(&w, &store).await?;
    for i in 0..3 {
        let (_, ok) = pusher.push(&store, chain(i * 100 + 1, i * 100 + 100), None).await?;
        ensure!(ok["exit"]["_tag"] == "Success", "{ok}");
    }
    let mut live = connect(&w, &store).await?;
    let (live_id, seen, backend) = live_pull(&mut live, &store, None).await?;
    ensure!(seen.len() == 300, "{}", seen.len());
    // A catch-up that got its first chunk and has not acked it.
    let mut slow = connect(&w, &store).await?;
    let slow_id = slow.id();
    slow.send(&pull_request(&slow_id, &store, None, false)).await?;
    let first = slow.recv_for(&slow_id).await?;
    ensure!(seq_nums(&first["values"][0]) == (1..=100).collect::<Vec<_>>(), "{first}");
    let mut simple = WsClient::connect(&format!("{}/websocket?storeId={store}", w.ws_base())).await?;
    simple.send(&json!({"type": "auth", "token": TOKEN})).await?;
    ensure!(simple.recv().await?["type"] == "auth_ok");

    let (status, body) = http_request(
        w.addr,
        &format!(
            "POST /__test/evict?storeId={store} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    )
    .await?;
    ensure!(status == 200 && body.contains("evicted"), "{status} {body}");

    let (_, ok) = pusher.push(&store, chain(301, 301), Some(&backend)).await?;
    ensure!(ok["exit"]["_tag"] == "Success", "the head survived the eviction: {ok}");
    let f = live.recv_for(&live_id).await?;
    ensure!(seq_nums(&f["values"][0]) == vec![301], "live pull resumed: {f}");
    live.assert_quiet(&store).await.context("no duplicate broadcast")?;
    let msg = simple.recv().await?;
    ensure!(msg["type"] == "events" && msg["events"][0]["seqNum"] == 301, "simple client still subscribed: {msg}");

    let mut rest = Vec::new();
    loop {
        slow.send(&ack(&slow_id)).await?;
        let f = slow.recv_for(&slow_id).await?;
        if f["_tag"] == "Exit" {
            ensure!(f["exit"]["_tag"] == "Success", "{f}");
            break;
        }
        rest.extend(seq_nums(&f["values"][0]));
    }
    ensure!(rest == (101..=301).collect::<Vec<_>>(), "the catch-up continued where it was: {rest:?}");
    Ok(())
}

fn reference_config(dir: &Path) -> Result<std::path::PathBuf> {
    // This worker under the reference's script and class names and D1 database: what an
    // in-place switch from @livestore/sync-cf deploys.
    // The top level (no `d1` environment: the worker keeps the reference's script name) with
    // the reference's D1 binding added.
    let ours = std::fs::read_to_string(cloudflare_dir().join("wrangler.toml"))?;
    let top = ours.split("\n[env.").next().unwrap_or_default();
    let adapted = top
        .replace("name = \"livestore-sync-worker\"", "name = \"livestore-sync-cf-anchor-ref-d1\"")
        .replace("class_name = \"WebSocketServer\"", "class_name = \"SyncBackendDO\"")
        .replace("new_sqlite_classes = [\"WebSocketServer\"]", "new_sqlite_classes = [\"SyncBackendDO\"]")
        .replace("STORAGE = \"do-sqlite\"", "STORAGE = \"d1\"")
        + "\n[[d1_databases]]\nbinding = \"DB\"\ndatabase_name = \"livestore-sync\"\ndatabase_id = \"00000000-0000-0000-0000-000000000001\"\n";
    ensure!(adapted.matches("SyncBackendDO").count() == 2 && adapted.contains("STORAGE = \"d1\""), "{adapted}");
    let path = dir.join(format!(".wrangler-reference-{}.toml", std::process::id()));
    std::fs::write(&path, adapted)?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_d1_database_written_by_the_reference_is_read_and_extended() -> Result<()> {
    let _turn = WRANGLER_LOCK.lock().await;
    let tmp = tempfile::tempdir()?;
    let persist = tmp.path().join("state");
    let store = unique_store("cf-ref");
    let batch: Vec<Value> = chain(1, 20);

    let mut reference = Wrangler::start(WranglerConfig {
        dir: repo_root().join("tests/client/reference"),
        config: Some(Path::new("wrangler.d1.toml")),
        persist: &persist,
        vars: &[],
        port: None,
        env: None,
    })
    .await
    .context("starting the reference worker")?;
    let mut c = connect(&reference, &store).await?;
    // The reference takes one push at a time per batch slice; 20 events in two pushes.
    let (_, ok) = c.push(&store, batch[..10].to_vec(), None).await?;
    ensure!(ok["exit"]["_tag"] == "Success", "{ok}");
    let (_, ok) = c.push(&store, batch[10..].to_vec(), None).await?;
    ensure!(ok["exit"]["_tag"] == "Success", "{ok}");
    let written = c.pull_all(&store, None).await?;
    let backend = written[0]["backendId"].as_str().unwrap_or_default().to_string();
    let written_events: Vec<Value> =
        written.iter().flat_map(|r| r["batch"].as_array().cloned().unwrap_or_default()).collect();
    ensure!(written_events.len() == 20, "{written:?}");
    drop(c);
    reference.kill().await?;

    let config = reference_config(&cloudflare_dir())?;
    let started = Wrangler::start(WranglerConfig {
        dir: cloudflare_dir(),
        config: Some(&config),
        persist: &persist,
        vars: &[],
        port: None,
        env: None,
    })
    .await;
    let _ = std::fs::remove_file(&config);
    let ours = started?;
    let mut c = connect(&ours, &store).await?;
    let read = c.pull_all(&store, None).await?;
    let read_events: Vec<Value> =
        read.iter().flat_map(|r| r["batch"].as_array().cloned().unwrap_or_default()).collect();
    ensure!(
        read_events == written_events,
        "every event as the reference wrote it:\n{read_events:?}\nvs\n{written_events:?}"
    );
    ensure!(read[0]["backendId"] == backend.as_str(), "backend id carried over: {} vs {backend}", read[0]["backendId"]);
    // A client of the reference continues: cursor with the old backend id, push at the head.
    let after = c.pull_all(&store, Some((&backend, 20))).await?;
    ensure!(after.iter().all(|r| seq_nums(r).is_empty()), "{after:?}");
    let (_, ok) = c.push(&store, chain(21, 25), Some(&backend)).await?;
    ensure!(ok["exit"]["_tag"] == "Success", "extending the reference's log: {ok}");
    let (_, gap) = c.push(&store, chain(27, 27), Some(&backend)).await?;
    ensure!(gap["exit"]["_tag"] == "Failure", "{gap}");
    let (all, _) = c.pull_seq_nums(&store).await?;
    ensure!(all == (1..=25).collect::<Vec<_>>(), "{all:?}");
    Ok(())
}

/// The worker's JavaScript copies of the shared rules (table names, store ids, tokens, scratch
/// limits) agree with `schema/vectors.json`, which the Rust unit tests check natively.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_agrees_with_the_shared_rule_vectors() -> Result<()> {
    node_test_in_cloudflare("test/rules.test.mjs", 6).await
}

/// `npm run deploy` refuses an open endpoint (no AUTH_TOKEN secret, no payload hook, no
/// `--allow-open`) and prints the URL for the client: `cloudflare/test/deploy.test.mjs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_refuses_an_open_endpoint_unless_asked() -> Result<()> {
    node_test_in_cloudflare("test/deploy.test.mjs", 6).await
}

async fn node_test_in_cloudflare(file: &str, tests: usize) -> Result<()> {
    let out = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", file])
        .current_dir(cloudflare_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("running node --test in cloudflare/")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pass = format!("pass {tests}");
    ensure!(out.status.success() && stdout.contains(&pass), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// What `wrangler deploy` would upload: the default configuration binds no D1 database (a
/// DO SQLite deploy needs no `wrangler d1 create`); `--env d1` binds it and sets STORAGE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_deploy_binds_no_d1_database_and_env_d1_does() -> Result<()> {
    let bindings = |env: Option<&'static str>| async move {
        let out_dir = tempfile::tempdir()?;
        let mut cmd = tokio::process::Command::new(cloudflare_dir().join("node_modules/.bin/wrangler"));
        cmd.args(["deploy", "--dry-run", "--outdir"]).arg(out_dir.path());
        if let Some(env) = env {
            cmd.args(["--env", env]);
        }
        let out = cmd
            .current_dir(cloudflare_dir())
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CI", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .context("running wrangler deploy --dry-run")?;
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.success(), "wrangler deploy --dry-run failed:\n{text}");
        Ok::<String, anyhow::Error>(text)
    };
    let default = bindings(None).await?;
    ensure!(default.contains("env.WEBSOCKET_SERVER (WebSocketServer)"), "{default}");
    ensure!(!default.contains("D1 Database"), "the default deploy must not need a D1 database:\n{default}");
    ensure!(default.contains("env.STORAGE (\"do-sqlite\")"), "{default}");
    let d1 = bindings(Some("d1")).await?;
    ensure!(d1.contains("env.DB (livestore-sync)") && d1.contains("D1 Database"), "{d1}");
    ensure!(d1.contains("env.STORAGE (\"d1\")") && d1.contains("env.WEBSOCKET_SERVER (WebSocketServer)"), "{d1}");
    Ok(())
}

/// STORAGE = "d1" without the `d1` environment (so without a DB binding) is a clear 500 naming
/// the fix, on every request, /health included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d1_storage_without_a_database_binding_says_how_to_fix_it() -> Result<()> {
    let _turn = WRANGLER_LOCK.lock().await;
    let tmp = tempfile::tempdir()?;
    let vars = [("STORAGE", "d1"), ("AUTH_TOKEN", TOKEN)];
    let w = Wrangler::start(WranglerConfig {
        dir: cloudflare_dir(),
        config: None,
        persist: &tmp.path().join("state"),
        vars: &vars,
        port: None,
        env: None,
    })
    .await?;
    let (status, text) = http_request(w.addr, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    ensure!(status == 500 && text.contains("no D1 database is bound as DB: run with --env d1"), "{text}");
    Ok(())
}

/// wrangler.toml sets the Worker's CPU limit explicitly (within what paid plans allow), and the
/// Free-plan advice `npm run deploy` prints names the same lines.
#[test]
fn wrangler_toml_sets_the_cpu_limit_explicitly() -> Result<()> {
    let toml = std::fs::read_to_string(cloudflare_dir().join("wrangler.toml"))?;
    let mut lines = toml.lines().map(str::trim).skip_while(|l| *l != "[limits]").skip(1);
    let line = lines.find(|l| !l.is_empty() && !l.starts_with('#')).context("no [limits] table")?;
    let ms: u64 = line.strip_prefix("cpu_ms = ").context("cpu_ms must follow [limits]")?.parse()?;
    ensure!((10..=300_000).contains(&ms), "cpu_ms = {ms} is outside 10…300000");
    let deploy = std::fs::read_to_string(cloudflare_dir().join("scripts/deploy.mjs"))?;
    ensure!(deploy.contains(&format!("\"cpu_ms = {ms}\"")), "deploy.mjs names another limit than wrangler.toml's {ms}");
    Ok(())
}

async fn admin_call(w: &Wrangler, method: &str, path: &str, secret: Option<&str>) -> Result<(u16, String)> {
    let auth = secret.map(|s| format!("Authorization: Bearer {s}\r\n")).unwrap_or_default();
    let (status, raw) = http_request(
        w.addr,
        &format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"),
    )
    .await?;
    Ok((status, raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

/// The per-store admin API on the worker, in the native shapes: info, event pages (args byte for
/// byte), connections, and a reset that closes the store's sockets; what needs every store or a
/// stream is refused with the reason; no ADMIN_SECRET, no admin API.
async fn admin_api_on(storage: &str) -> Result<()> {
    use livestore_sync_tests::{event, is_push_ack};
    let _turn = WRANGLER_LOCK.lock().await;
    let tmp = tempfile::tempdir()?;
    let w = worker_with(tmp.path(), storage, None, &[("ADMIN_SECRET", "cf-admin-s3cret")]).await?;
    let secret = Some("cf-admin-s3cret");
    let store = unique_store("cf-admin");
    let mut c = connect(&w, &store).await?;
    let mut first = event(1, 0);
    first["args"] = json!({ "id": "big", "n": 9007199254740993u64 });
    let (_, ok) = c.push(&store, vec![first], None).await?;
    ensure!(is_push_ack(&ok), "{ok}");
    let (_, ok) = c.push(&store, chain(2, 3), None).await?;
    ensure!(is_push_ack(&ok), "{ok}");

    let info_path = format!("/admin/stores/{store}");
    ensure!(admin_call(&w, "GET", &info_path, None).await?.0 == 401, "no secret");
    ensure!(admin_call(&w, "GET", &info_path, Some("wrong")).await?.0 == 401, "wrong secret");
    let (status, body) = admin_call(&w, "GET", &info_path, secret).await?;
    ensure!(status == 200, "{status} {body}");
    let info: Value = serde_json::from_str(&body)?;
    ensure!(info["head"] == 3 && info["eventCount"] == 3 && info["storeId"] == store.as_str(), "{info}");

    let (status, body) = admin_call(&w, "GET", &format!("{info_path}/events?limit=2"), secret).await?;
    ensure!(status == 200, "{status} {body}");
    ensure!(body.contains("9007199254740993"), "args byte for byte: {body}");
    let page: Value = serde_json::from_str(&body)?;
    ensure!(page["events"].as_array().map(Vec::len) == Some(2) && page["next"] == 2, "{page}");
    let (_, body) = admin_call(&w, "GET", &format!("{info_path}/events?after=2"), secret).await?;
    let page: Value = serde_json::from_str(&body)?;
    ensure!(page["events"][0]["seqNum"] == 3 && page["next"].is_null(), "{page}");
    ensure!(admin_call(&w, "GET", &format!("{info_path}/events?limit=0"), secret).await?.0 == 400, "limit range");

    let (id, _, _) = live_pull(&mut c, &store, None).await?;
    let (status, body) = admin_call(&w, "GET", &format!("{info_path}/connections"), secret).await?;
    let conns: Value = serde_json::from_str(&body).with_context(|| format!("{status} {body}"))?;
    let list = conns["connections"].as_array().context("connections")?;
    ensure!(list.len() == 1 && list[0]["protocol"] == "livestore" && list[0]["connectedAt"].is_number(), "{conns}");
    ensure!(list[0]["openPulls"] == 1, "the component counts the live pull ({id}): {conns}");

    for refused in ["/admin/stores", "/admin/overview", &format!("{info_path}/export"), &format!("{info_path}/tail")] {
        let (status, body) = admin_call(&w, "GET", refused, secret).await?;
        ensure!(status == 404 && body.contains("not available on Cloudflare"), "{refused}: {status} {body}");
    }
    ensure!(admin_call(&w, "GET", "/admin/stores/nothing-here", secret).await?.0 == 404, "unknown store");

    // Admin actions are an RPC only the Worker makes: a header on a client's request does nothing.
    let forged = urlencode(&json!({ "action": "reset", "storeId": store }).to_string());
    let payload = urlencode(&urlencode(&json!({ "authToken": TOKEN }).to_string()));
    let body = json!({"_tag":"Request","id":"0","tag":"SyncHttpRpc.Ping","payload":{"storeId":store,"payload":{"authToken":TOKEN}},"headers":[]}).to_string();
    let (status, raw) = http_request(
        w.addr,
        &format!(
            "POST /?storeId={store}&payload={payload}&transport=http HTTP/1.1\r\nHost: x\r\nx-livestore-sync-admin: {forged}\r\nx-livestore-sync-test: evict\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await?;
    ensure!(status == 200 && raw.contains("Pong"), "the request reached the store: {status} {raw}");
    let info: Value = serde_json::from_str(&admin_call(&w, "GET", &info_path, secret).await?.1)?;
    ensure!(info["head"] == 3, "a forged admin header must not reset the store: {info}");

    let (status, body) = admin_call(&w, "POST", &format!("{info_path}/reset"), secret).await?;
    ensure!(status == 200, "{status} {body}");
    let reset: Value = serde_json::from_str(&body)?;
    ensure!(reset["removedEvents"] == 3, "{reset}");
    ensure!(c.recv_close().await? == Some(1012), "the store's socket is closed for the reset");
    let info: Value = serde_json::from_str(&admin_call(&w, "GET", &info_path, secret).await?.1)?;
    ensure!(info["head"] == 0 && info["backendId"] == reset["backendId"], "{info}");
    let mut again = connect(&w, &store).await?;
    let (_, ok) = again.push(&store, chain(1, 1), None).await?;
    ensure!(is_push_ack(&ok), "the reset store starts over from 1: {ok}");
    drop(w);

    let open = worker(&tmp.path().join("no-admin"), storage, None).await?;
    let (status, body) = admin_call(&open, "GET", &info_path, secret).await?;
    ensure!(status == 404 && body.contains("ADMIN_SECRET"), "{status} {body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_answers_the_per_store_admin_api_on_do_sqlite() -> Result<()> {
    admin_api_on("do-sqlite").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_answers_the_per_store_admin_api_on_d1() -> Result<()> {
    admin_api_on("d1").await
}
