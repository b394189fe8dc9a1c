//! A data directory written by livestore-sync 0.1 (table per store; `fixtures/layout-v1`, made
//! by its `make.mjs` with that release) is migrated on first start and then serves exactly what
//! it served before: the same events, args text, backend ids and heads, and the simple
//! protocol's event ids still make retries idempotent.

use anyhow::{ensure, Context, Result};
use livestore_sync_tests::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layout-v1")
}

/// A fresh copy of the fixture's data directory.
fn old_data_dir() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    std::fs::copy(fixture().join("sync.db"), dir.path().join("sync.db")).context("copying the fixture")?;
    Ok(dir)
}

fn cli(data_dir: &Path, args: &[&str]) -> Result<(bool, String, String)> {
    binary::run_cli(env!("CARGO_BIN_EXE_livestore-sync"), data_dir, &[], args)
}

fn ok(data_dir: &Path, args: &[&str]) -> Result<String> {
    binary::cli_ok(env!("CARGO_BIN_EXE_livestore-sync"), data_dir, &[], args)
}

/// What the 0.1 release said about each store (`expected/stores.json`).
fn expected_stores() -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(fixture().join("expected/stores.json"))?;
    Ok(serde_json::from_str(&text)?)
}

fn tables(dir: &Path) -> Result<Vec<String>> {
    let conn = rusqlite::Connection::open(dir.join("sync.db"))?;
    let mut stmt = conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")?;
    let names = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_the_previous_release_migrates_and_serves_identical_pulls() -> Result<()> {
    let tmp = old_data_dir()?;
    let dir = tmp.path();
    assert!(tables(dir)?.iter().any(|t| t == "context_7"), "the fixture is in the older layout");
    let mut server = TestServer::builder().data_dir(dir).token(None).start().await?;
    let names = tables(dir)?;
    assert_eq!(names, ["events", "livestore_sync_health", "stores"], "only the new layout is left");

    let stores = expected_stores()?;
    assert_eq!(stores.len(), 12);
    for store in &stores {
        let id = store["storeId"].as_str().context("storeId")?;
        let export =
            std::fs::read_to_string(fixture().join("expected").join(store["export"].as_str().context("file")?))?;
        let expected: Vec<Value> = export.lines().skip(1).map(serde_json::from_str).collect::<Result<_, _>>()?;
        // Every event, in order, as a LiveStore client pulls it.
        let mut c = server.connect(id).await?;
        let responses = c.pull_all(id, None).await?;
        let pulled: Vec<&Value> = responses.iter().flat_map(|r| r["batch"].as_array().into_iter().flatten()).collect();
        ensure!(pulled.len() == expected.len(), "{id:?}: {} events pulled, {} expected", pulled.len(), expected.len());
        for (item, want) in pulled.iter().zip(&expected) {
            let got = &item["eventEncoded"];
            for key in ["seqNum", "parentSeqNum", "name", "clientId", "sessionId"] {
                ensure!(got[key] == want[key], "{id:?} {key}: {got} vs {want}");
            }
            ensure!(got["args"] == want["args"], "{id:?} args: {got} vs {want}");
            ensure!(item["metadata"]["value"]["createdAt"] == want["createdAt"], "{id:?}: {item} vs {want}");
        }
        let backend = responses.first().and_then(|r| r["backendId"].as_str()).unwrap_or_default().to_string();
        if !expected.is_empty() {
            ensure!(backend == store["backendId"], "{id:?}: backend {backend} vs {}", store["backendId"]);
        }
        c.close().await?;
    }

    // Args text survives byte for byte: the pull frame carries what the client sent.
    let mut c = server.connect("quickstart").await?;
    let id = c.id();
    c.send(&pull_request(&id, "quickstart", None, false)).await?;
    let mut raw = String::new();
    loop {
        let text = c.recv_text().await?;
        raw.push_str(&text);
        if text.contains("\"Exit\"") {
            break;
        }
        c.send(&ack(&id)).await?;
    }
    ensure!(raw.contains(r#""big":123456789012345678901234,"f":1.10"#), "{raw:.600}");

    // The store continues where it was: same backend id, next seqNum.
    let big = stores.iter().find(|s| s["storeId"] == "big").context("big")?;
    let backend = big["backendId"].as_str().context("backendId")?;
    let mut c = server.connect("big").await?;
    let (_, ack) = c.push("big", chain(1201, 1202), Some(backend)).await?;
    ensure!(is_push_ack(&ack), "{ack}");
    let (_, stale) = c.push("big", chain(1200, 1200), Some(backend)).await?;
    ensure!(!is_push_ack(&stale), "a push at an old parent is refused: {stale}");

    // The simple protocol's retry of an event pushed before the upgrade is acknowledged with
    // its old seqNum and not stored again.
    let mut simple = WsClient::connect(&format!("{}/websocket?storeId=simple", server.ws_base())).await?;
    simple
        .send(&json!({ "type": "push", "events": [
            { "id": "evt-2", "type": "messageCreated", "data": { "text": "hello 2" } },
            { "id": "evt-4", "type": "messageCreated", "data": { "text": "hello 4" } }
        ] }))
        .await?;
    let ack = simple.recv().await?;
    ensure!(ack["type"] == "ack" && ack["seqNums"] == json!([2, 4]), "{ack}");

    // A store `@livestore/sync-cf` wrote with a row past its head: the head covers the row.
    let team: Value = serde_json::from_str(&ok(dir, &["stores", "info", "--json", "team-1"])?)?;
    assert_eq!((team["head"].clone(), team["eventCount"].clone()), (json!(3), json!(3)), "{team}");
    assert_eq!(team["backendId"], "ref-backend-id");
    server.stop().await?;

    // The CLI's exports equal the 0.1 release's, byte for byte (but for the appended events and
    // the head `@livestore/sync-cf`'s store now states correctly).
    for store in &stores {
        let id = store["storeId"].as_str().context("storeId")?;
        let file = store["export"].as_str().context("export")?;
        let mut want = std::fs::read_to_string(fixture().join("expected").join(file))?;
        let got = ok(dir, &["export", "--", id])?;
        match id {
            "team-1" => want = want.replacen(r#""head":2,"#, r#""head":3,"#, 1),
            "big" | "simple" => {
                let old_lines = want.lines().count();
                ensure!(got.lines().skip(1).take(old_lines - 1).eq(want.lines().skip(1)), "{id:?} kept its events");
                continue;
            }
            _ => {}
        }
        ensure!(got == want, "{id:?}:\n{got}\nvs\n{want}");
    }
    let listed = ok(dir, &["stores", "list", "--json"])?;
    let counts: Vec<(String, i64)> = listed
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .map(|v| (v["storeId"].as_str().unwrap_or_default().into(), v["eventCount"].as_i64().unwrap_or(-1)))
        })
        .collect::<Result<_, _>>()?;
    for store in &stores {
        let id = store["storeId"].as_str().unwrap_or_default();
        let extra = match id {
            "big" => 2,
            "simple" => 1,
            _ => 0,
        };
        let want = store["eventCount"].as_i64().unwrap_or_default() + extra;
        ensure!(counts.contains(&(id.to_string(), want)), "{id:?}: {want} events in {listed}");
    }
    // A second start finds the new layout and changes nothing.
    let before = std::fs::read(dir.join("sync.db"))?.len();
    let mut again = TestServer::builder().data_dir(dir).token(None).start().await?;
    again.stop().await?;
    assert_eq!(tables(dir)?, names);
    assert!(std::fs::read(dir.join("sync.db"))?.len() <= before + 8192);
    Ok(())
}

/// A reading command on an unmigrated directory migrates it when nothing holds the directory,
/// and refuses (saying why) while another process does: a 0.1 server still running on it
/// would lose its tables.
#[test]
fn reading_commands_migrate_only_a_directory_nobody_holds() -> Result<()> {
    let held = old_data_dir()?;
    let _lock = livestore_sync::data_lock::DataDirLock::acquire(held.path(), "serve")?;
    let (success, _, stderr) = cli(held.path(), &["stores", "list"])?;
    assert!(!success && stderr.contains("older table-per-store layout") && stderr.contains("serve"), "{stderr}");
    assert!(tables(held.path())?.iter().any(|t| t == "context_7"), "nothing changed");

    let free = old_data_dir()?;
    let listed = ok(free.path(), &["stores", "list"])?;
    assert_eq!(listed.lines().filter(|l| !l.is_empty()).count(), 13, "a header and 12 stores: {listed}");
    assert_eq!(tables(free.path())?, ["events", "livestore_sync_health", "stores"]);
    Ok(())
}
