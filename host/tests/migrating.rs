//! MIGRATING.md's data move: `scripts/d1-to-import.mjs` turns `wrangler d1 execute --json` rows
//! and an HTTP-transport pull answer into `livestore-sync import` lines, and the import keeps
//! every event (args byte for byte) and, with the pull's backend id, the store's identity.

use anyhow::{Context, Result};
use livestore_sync_tests::workerd::repo_root;
use livestore_sync_tests::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_livestore-sync");

fn convert(dir: &Path, args: &[&str]) -> Result<Output> {
    Command::new("node")
        .arg(repo_root().join("scripts/d1-to-import.mjs"))
        .args(args)
        .current_dir(dir)
        .output()
        .context("running node scripts/d1-to-import.mjs")
}

fn cli(data: &Path, args: &[&str]) -> Result<Output> {
    Ok(binary::command(BIN).arg("--data-dir").arg(data).args(args).output()?)
}

/// Three rows as `wrangler d1 execute --json` prints `SELECT * FROM eventlog_7_…`: `args` is the
/// stored JSON text (an integer past 2^53, a NULL, nested escapes).
fn d1_rows() -> Value {
    let row = |seq: i64, name: &str, args: Option<&str>, client: &str| {
        json!({ "seqNum": seq, "parentSeqNum": seq - 1, "name": name, "args": args,
                "createdAt": format!("2026-11-20T10:00:0{seq}.000Z"), "clientId": client, "sessionId": "s1" })
    };
    json!([{
        "results": [
            row(1, "v1.TodoCreated", Some(r#"{"id":"t1","n":12345678901234567890}"#), "a"),
            row(2, "v1.AllCleared", None, "a"),
            row(3, "v1.TodoCompleted", Some(r#"{"id":"t1","nested":{"a":[1,{"b":"ü \"q\""}]}}"#), "b"),
        ],
        "success": true,
        "meta": { "served_by": "miniflare.db", "duration": 0, "changes": 0, "rows_read": 3, "rows_written": 0 }
    }])
}

#[test]
fn d1_rows_import_with_their_args_byte_for_byte() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    std::fs::write(tmp.path().join("rows.json"), serde_json::to_string_pretty(&d1_rows())?)?;
    let out = convert(tmp.path(), &["rows.json"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(tmp.path().join("store.jsonl"), &out.stdout)?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("no header: new backend id on import"));

    let data = tmp.path().join("data");
    let imported = cli(&data, &["import", "my-store", &tmp.path().join("store.jsonl").to_string_lossy()])?;
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let exported = cli(&data, &["export", "my-store"])?;
    let text = String::from_utf8(exported.stdout)?;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three events:\n{text}");
    assert!(lines[1].contains(r#""args":{"id":"t1","n":12345678901234567890}"#), "{}", lines[1]);
    assert!(lines[2].contains(r#""args":null"#), "a NULL args stays null: {}", lines[2]);
    assert!(lines[3].contains(r#""args":{"id":"t1","nested":{"a":[1,{"b":"ü \"q\""}]}}"#), "{}", lines[3]);
    assert!(lines[3].contains(r#""createdAt":"2026-11-20T10:00:03.000Z""#) && lines[3].contains(r#""clientId":"b""#));
    Ok(())
}

#[test]
fn a_gap_in_the_rows_is_refused() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut rows = d1_rows();
    rows[0]["results"].as_array_mut().context("rows")?.remove(1);
    std::fs::write(tmp.path().join("rows.json"), rows.to_string())?;
    let out = convert(tmp.path(), &["rows.json"])?;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing written on a refusal");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("seqNum 3 has parentSeqNum 2, expected 1: events are missing"), "{stderr}");
    Ok(())
}

/// The old deployment's HTTP pull carries the backend id: the imported store keeps it, so the
/// store's clients continue instead of resetting. (Any compatible server answers the pull the
/// same way; here the native server plays the old deployment.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_answer_keeps_the_backend_id() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let old = binary::serve(BIN, tmp.path(), &tmp.path().join("old"), &[], &[])?;
    let mut c = WsClient::connect(&sync_url(&format!("ws://{}", old.addr), "user:42", TOKEN)).await?;
    let (_, ack) = c.push("user:42", chain(1, 30), None).await?;
    assert!(is_push_ack(&ack), "{ack}");
    let payload = urlencode(&json!({ "authToken": TOKEN }).to_string());
    let request = json!({ "_tag": "Request", "id": "1", "tag": "SyncHttpRpc.Pull",
        "payload": { "storeId": "user:42", "cursor": { "_tag": "None" } }, "headers": [] });
    let (status, answer) =
        http_post(old.addr, &format!("/?storeId=user%3A42&transport=http&payload={payload}"), &request.to_string())
            .await?;
    assert_eq!(status, 200, "{answer}");
    let info = cli(&tmp.path().join("old"), &["stores", "info", "user:42", "--json"])?;
    let before: Value = serde_json::from_slice(&info.stdout)?;
    drop(old);

    std::fs::write(tmp.path().join("pull.json"), &answer)?;
    let out = convert(tmp.path(), &["--store-id", "user:42", "pull.json"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(tmp.path().join("store.jsonl"), &out.stdout)?;
    let new = tmp.path().join("new");
    let imported = cli(&new, &["import", "user:42", &tmp.path().join("store.jsonl").to_string_lossy()])?;
    let said = String::from_utf8_lossy(&imported.stderr);
    assert!(imported.status.success() && said.contains("its clients continue"), "{said}");
    let info = cli(&new, &["stores", "info", "user:42", "--json"])?;
    let after: Value = serde_json::from_slice(&info.stdout)?;
    assert_eq!((&after["backendId"], &after["head"]), (&before["backendId"], &json!(30)), "{after}");
    Ok(())
}
