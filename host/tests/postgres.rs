//! The Postgres engine (`--database-url`) on a private cluster (`tests/src/postgres.rs`): the
//! raw-frame suite, the real LiveStore client, the simple protocol, the CLI and the admin API,
//! and several nodes sharing one database.

use anyhow::{ensure, Context, Result};
use livestore_sync_tests::postgres::PgCluster;
use livestore_sync_tests::*;
use serde_json::{json, Value};
use std::path::Path;

async fn server_on(url: &str) -> Result<TestServer> {
    TestServer::builder().postgres(url).start().await
}

fn cli(data_dir: &Path, url: &str, args: &[&str]) -> Result<(bool, String, String)> {
    let out = binary::command(env!("CARGO_BIN_EXE_livestore-sync"))
        .args(args)
        .env("LIVESTORE_SYNC_DATA_DIR", data_dir)
        .env("DATABASE_URL", url)
        .current_dir(data_dir)
        .output()
        .context("running livestore-sync")?;
    Ok((out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into()))
}

fn ok(data_dir: &Path, url: &str, args: &[&str]) -> Result<String> {
    let (success, stdout, stderr) = cli(data_dir, url, args)?;
    ensure!(success, "livestore-sync {args:?} failed:\n{stdout}\n{stderr}");
    Ok(stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raw_frame_suite_passes_on_postgres() -> Result<()> {
    let pg = PgCluster::start()?;
    let server = server_on(&pg.url("frames")?).await?;
    conformance::run_all(&server.endpoint()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_livestore_clients_sync_through_postgres() -> Result<()> {
    let pg = PgCluster::start()?;
    let server = server_on(&pg.url("clients")?).await?;
    for file in ["real-client.test.mjs", "http-client.test.mjs", "store-ids.test.mjs"] {
        // Fails unless every test in the file passed.
        node_test(file, &server.ws_base(), &server.http_base()).await.with_context(|| file)?;
    }
    Ok(())
}

/// The simple protocol's idempotent pushes, the CLI and the admin API on Postgres; events and
/// backend ids survive a restart of the server (they live in Postgres, not the data directory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_protocol_cli_and_admin_api_on_postgres() -> Result<()> {
    let pg = PgCluster::start()?;
    let url = pg.url("ops")?;
    let tmp = tempfile::tempdir()?;
    let mut server = TestServer::builder()
        .postgres(&url)
        .data_dir(tmp.path())
        .token(None)
        .config(|c| c.admin_secret = Some("admin-s3cret".into()))
        .start()
        .await?;
    let mut simple = WsClient::connect(&format!("{}/websocket?storeId=team%2Fa%20b", server.ws_base())).await?;
    for _ in 0..2 {
        simple
            .send(&json!({ "type": "push", "events": [
                { "id": "e-1", "type": "messageCreated", "data": { "text": "hi", "big": 12345678901234567890u64 } },
                { "id": "e-2", "type": "messageCreated", "data": { "text": "there" } }
            ] }))
            .await?;
        let ack = simple.recv().await?;
        ensure!(ack["type"] == "ack" && ack["seqNums"] == json!([1, 2]), "a retry is acknowledged, not stored: {ack}");
    }
    let mut c = server.connect("team/a b").await?;
    let (seqs, backend) = c.pull_seq_nums("team/a b").await?;
    assert_eq!(seqs, vec![1, 2]);
    let (_, ack) = c.push("team/a b", chain(3, 4), Some(&backend)).await?;
    ensure!(is_push_ack(&ack), "{ack}");

    let (status, raw) = http_request(
        server.addr,
        "GET /admin/stores/team%2Fa%20b/events?after=0&limit=2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-s3cret\r\nConnection: close\r\n\r\n",
    )
    .await?;
    ensure!(status == 200 && raw.contains("\"next\":2") && raw.contains("12345678901234567890"), "{raw}");

    let listed = ok(tmp.path(), &url, &["stores", "list", "--json"])?;
    let store: Value = serde_json::from_str(listed.lines().next().context("a store")?)?;
    assert_eq!(
        (store["storeId"].clone(), store["head"].clone(), store["eventCount"].clone()),
        (json!("team/a b"), json!(4), json!(4))
    );
    let export = ok(tmp.path(), &url, &["export", "team/a b"])?;
    let file = tmp.path().join("team.jsonl");
    std::fs::write(&file, &export)?;
    let (refused, _, stderr) = cli(tmp.path(), &url, &["import", "team/a b", file.to_str().context("path")?])?;
    ensure!(!refused && stderr.contains("already has 4 events"), "{stderr}");
    ok(tmp.path(), &url, &["import", "copy", file.to_str().context("path")?])?;
    let copy = ok(tmp.path(), &url, &["export", "copy"])?;
    let events = |e: &str| e.lines().skip(1).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(events(&copy), events(&export), "export → import → export is byte-identical on Postgres");
    let (no_db, _, stderr) = cli(tmp.path(), &url, &["db", "tables"])?;
    ensure!(!no_db && stderr.contains("psql"), "{stderr}");

    server.stop().await?;
    // A new server on an empty data directory finds everything in Postgres.
    let server = server_on(&url).await?;
    let mut c = server.connect("team/a b").await?;
    let (seqs, backend_after) = c.pull_seq_nums("team/a b").await?;
    assert_eq!((seqs, backend_after), (vec![1, 2, 3, 4], backend));
    Ok(())
}
