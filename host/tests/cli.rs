//! The operator CLI against a real data file, and the admin endpoints of a running server.

use anyhow::{ensure, Context, Result};
use livestore_sync_tests::*;
use serde_json::{json, Value};
use std::path::Path;

fn cli(data_dir: &Path, args: &[&str]) -> Result<(bool, String, String)> {
    binary::run_cli(env!("CARGO_BIN_EXE_livestore-sync"), data_dir, &[], args)
}

fn ok(data_dir: &Path, args: &[&str]) -> Result<String> {
    binary::cli_ok(env!("CARGO_BIN_EXE_livestore-sync"), data_dir, &[], args)
}

/// Pulled items without their order-independent noise: (eventEncoded, createdAt) per event.
async fn pulled(c: &mut WsClient, store: &str) -> Result<Vec<Value>> {
    let responses = c.pull_all(store, None).await?;
    Ok(responses
        .iter()
        .flat_map(|r| r["batch"].as_array().cloned().unwrap_or_default())
        .map(|i| json!([i["eventEncoded"], i["metadata"]]))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_on_a_real_data_file() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut server = TestServer::builder().data_dir(dir).token(Some(TOKEN)).start().await?;
    let mut c = server.connect("src-store").await?;
    for start in (1..=250).step_by(50) {
        c.push("src-store", chain(start, start + 49), None).await?;
    }
    let original = pulled(&mut c, "src-store").await?;
    let (_, old_backend) = c.pull_seq_nums("src-store").await?;
    c.close().await?;

    // Read-only commands work beside a running server.
    let tables = ok(dir, &["db", "tables"])?;
    assert!(tables.lines().any(|l| l == "stores") && tables.lines().any(|l| l == "events"), "{tables}");
    let count = ok(
        dir,
        &[
            "db",
            "execute",
            "--command",
            "SELECT COUNT(*) AS n FROM events JOIN stores USING (storeKey) WHERE storeId = 'src-store'",
        ],
    )?;
    assert_eq!(count, "n\n250\n");
    let (success, _, stderr) = cli(dir, &["db", "execute", "--command", "CREATE TABLE scratch (x)"])?;
    assert!(!success && stderr.contains("--write"), "writes need --write: {stderr}");
    let listed = ok(dir, &["stores", "list"])?;
    assert!(listed.lines().any(|l| l.starts_with("src-store\t250\t250\t")), "{listed}");
    let info: Value = serde_json::from_str(&ok(dir, &["stores", "info", "src-store", "--json"])?)?;
    assert_eq!(info["head"], 250);
    assert_eq!(info["eventCount"], 250);
    assert_eq!(info["backendId"], old_backend.as_str());
    assert!(info["lastSyncAt"].as_str().is_some_and(|t| t.ends_with('Z')));
    let human = ok(dir, &["stores", "info", "src-store"])?;
    assert!(human.contains("head:           250"), "{human}");

    // export → import into a new store → identical pulls.
    let export = dir.join("src.jsonl");
    ok(dir, &["export", "src-store", "--output", export.to_str().unwrap_or_default()])?;
    let exported = std::fs::read_to_string(&export)?;
    assert_eq!(exported.lines().count(), 251, "a header line, then the events");
    let header: Value = serde_json::from_str(exported.lines().next().unwrap_or_default())?;
    assert_eq!(
        header,
        json!({ "livestoreSyncExport": 1, "storeId": "src-store", "backendId": old_backend, "head": 250, "events": 250 })
    );
    let stdout_export = ok(dir, &["export", "src-store"])?;
    assert_eq!(stdout_export, exported, "stdout and file exports agree");
    server.stop().await?;

    ok(dir, &["db", "execute", "--write", "--command", "CREATE TABLE scratch (x)"])?;
    ok(dir, &["import", "copy-store", export.to_str().unwrap_or_default()])?;
    let (success, _, stderr) = cli(dir, &["import", "copy-store", export.to_str().unwrap_or_default()])?;
    assert!(!success && stderr.contains("--replace"), "a non-empty store is refused: {stderr}");
    ok(dir, &["import", "--replace", "copy-store", export.to_str().unwrap_or_default()])?;
    // A file that is not a chain is refused and leaves nothing behind.
    let broken = dir.join("broken.jsonl");
    let mut lines: Vec<&str> = exported.lines().collect();
    lines.remove(10);
    std::fs::write(&broken, lines.join("\n"))?;
    let (success, _, stderr) = cli(dir, &["import", "broken-store", broken.to_str().unwrap_or_default()])?;
    assert!(!success && stderr.contains("does not continue the chain"), "{stderr}");

    // reset → a client holding the old backend id gets BackendIdMismatchError.
    let reset = ok(dir, &["reset", "src-store"])?;
    assert!(reset.contains("removed 250 events"), "{reset}");

    let server = TestServer::builder().data_dir(dir).token(Some(TOKEN)).start().await?;
    let mut c = server.connect("copy-store").await?;
    assert_eq!(pulled(&mut c, "copy-store").await?, original);
    let mut broken_client = server.connect("broken-store").await?;
    assert!(broken_client.pull_seq_nums("broken-store").await?.0.is_empty());
    let mut s = server.connect("src-store").await?;
    let id = s.id();
    s.send(&pull_request(&id, "src-store", Some((&old_backend, 10)), false)).await?;
    let answer = s.recv().await?;
    assert_eq!(failure_error(&answer).map(|e| e["_tag"].clone()), Some(json!("BackendIdMismatchError")), "{answer}");
    let (seqs, new_backend) = s.pull_seq_nums("src-store").await?;
    assert!(seqs.is_empty());
    assert_ne!(new_backend, old_backend);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_errors_are_clear() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (success, _, stderr) = cli(tmp.path(), &["stores", "list"])?;
    assert!(!success && stderr.contains("no database"), "{stderr}");
    let server = TestServer::builder().data_dir(tmp.path()).token(None).start().await?;
    drop(server);
    let (success, _, stderr) = cli(tmp.path(), &["stores", "info", "missing"])?;
    assert!(!success && stderr.contains("does not exist"), "{stderr}");
    let (success, _, stderr) = cli(tmp.path(), &["stores", "info", "no such store"])?;
    assert!(!success && stderr.contains(r#"store "no such store" does not exist"#), "{stderr}");
    let (success, _, stderr) = cli(tmp.path(), &["stores", "info", ""])?;
    assert!(!success && stderr.contains("invalid storeId: it is empty"), "{stderr}");
    let (success, _, stderr) = cli(tmp.path(), &["export", &"x".repeat(1025)])?;
    assert!(!success && stderr.contains("at most 1024"), "{stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_need_the_secret_and_reset_through_the_owner() -> Result<()> {
    let mut server =
        TestServer::builder().token(None).config(|c| c.admin_secret = Some("admin-s3cret".into())).start().await?;
    let ws = format!("ws://{}/?storeId=adm&transport=ws", server.addr);
    let mut c = WsClient::connect(&ws).await?;
    c.push("adm", chain(1, 3), None).await?;
    let (_, old_backend) = c.pull_seq_nums("adm").await?;
    let get = |auth: &str| format!("GET /admin/stores/adm HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    let (status, _) = http_request(server.addr, &get("")).await?;
    assert_eq!(status, 401);
    let (status, _) = http_request(server.addr, &get("Authorization: Bearer wrong\r\n")).await?;
    assert_eq!(status, 401);
    let (status, raw) = http_request(server.addr, &get("Authorization: Bearer admin-s3cret\r\n")).await?;
    assert_eq!(status, 200, "{raw}");
    let info: Value = serde_json::from_str(raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default())?;
    assert_eq!((info["head"].clone(), info["eventCount"].clone()), (json!(3), json!(3)));
    let reset = "POST /admin/stores/adm/reset HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-s3cret\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let (status, raw) = http_request(server.addr, reset).await?;
    assert_eq!(status, 200, "{raw}");
    // Connected clients are told to reconnect; the old backend id is refused.
    assert_eq!(c.recv_close().await?, Some(1012));
    let mut c = WsClient::connect(&ws).await?;
    let (_, push) = c.push("adm", chain(4, 4), Some(&old_backend)).await?;
    assert_eq!(failure_error(&push).map(|e| e["_tag"].clone()), Some(json!("BackendIdMismatchError")));
    let (_, fresh) = c.push("adm", chain(1, 1), None).await?;
    assert!(is_push_ack(&fresh), "{fresh}");
    // The LiveStore admin messages map to the same actions.
    let body = json!({ "_tag": "SyncMessage.AdminInfoRequest", "adminSecret": "admin-s3cret" }).to_string();
    let (status, raw) = http_post(server.addr, "/admin/stores/adm", &body).await?;
    assert_eq!(status, 200, "{raw}");
    let info: Value = serde_json::from_str(&raw)?;
    assert_eq!(info["_tag"], "SyncMessage.AdminInfoResponse");
    assert_eq!(info["info"]["durableObjectId"], "adm");
    assert_eq!(info["info"]["store"]["head"], 1);
    let body = json!({ "_tag": "SyncMessage.AdminResetRoomRequest", "adminSecret": "wrong" }).to_string();
    assert_eq!(http_post(server.addr, "/admin/stores/adm", &body).await?.0, 401);
    let body = json!({ "_tag": "SyncMessage.AdminResetRoomRequest", "adminSecret": "admin-s3cret" }).to_string();
    let (status, raw) = http_post(server.addr, "/admin/stores/adm", &body).await?;
    assert_eq!(status, 200, "{raw}");
    assert!(raw.contains("SyncMessage.AdminResetRoomResponse"), "{raw}");
    let (status, _) = http_request(
        server.addr,
        "GET /admin/stores/nothing-here HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-s3cret\r\nConnection: close\r\n\r\n",
    )
    .await?;
    assert_eq!(status, 404);
    server.stop().await?;
    Ok(())
}

/// Ids with spaces, slashes, unicode, a leading `-`, and ids differing only in case, through
/// the CLI (one argument each; `--` before an id that starts with `-`) and the admin API (one
/// percent-encoded path segment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_and_admin_api_take_any_store_id() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut server = TestServer::builder()
        .data_dir(dir)
        .token(Some(TOKEN))
        .config(|c| c.admin_secret = Some("admin-s3cret".into()))
        .start()
        .await?;
    let ids = ["team/a b:Zo\u{eb} (1)", "-starts-with-dash", "Abc", "abc"];
    for (i, id) in ids.iter().enumerate() {
        let mut c = WsClient::connect(&sync_url(&server.ws_base(), id, TOKEN)).await?;
        let (_, ack) = c.push(id, chain(1, i as i64 + 1), None).await?;
        ensure!(is_push_ack(&ack), "{id:?}: {ack}");
    }
    let listed = ok(dir, &["stores", "list", "--json"])?;
    let stores: Vec<Value> = listed.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    for (i, id) in ids.iter().enumerate() {
        let store = stores.iter().find(|s| s["storeId"] == *id);
        ensure!(store.is_some_and(|s| s["head"] == json!(i + 1)), "{id:?} in {listed}");
    }
    let info: Value = serde_json::from_str(&ok(dir, &["stores", "info", "--json", "--", "-starts-with-dash"])?)?;
    assert_eq!(info["head"], 2, "{info}");
    let exported = ok(dir, &["export", "team/a b:Zo\u{eb} (1)"])?;
    assert_eq!(exported.lines().count(), 2);
    let file = dir.join("export.jsonl");
    std::fs::write(&file, &exported)?;
    // Writing commands refuse while the server holds the data directory, and say what to do.
    for args in [
        vec!["import", "ABC", file.to_str().context("path")?],
        vec!["reset", "abc"],
        vec!["db", "execute", "--write", "--command", "DELETE FROM stores"],
    ] {
        let (success, _, stderr) = cli(dir, &args)?;
        assert!(!success, "{args:?} must refuse beside a running server");
        assert!(stderr.contains("in use by livestore-sync serve (pid") && stderr.contains("admin API"), "{stderr}");
    }
    server.stop().await?;
    ok(dir, &["import", "ABC", file.to_str().context("path")?])?;
    let server = TestServer::builder()
        .data_dir(dir)
        .token(Some(TOKEN))
        .config(|c| c.admin_secret = Some("admin-s3cret".into()))
        .start()
        .await?;
    let abc: Value = serde_json::from_str(&ok(dir, &["stores", "info", "--json", "abc"])?)?;
    let upper: Value = serde_json::from_str(&ok(dir, &["stores", "info", "--json", "ABC"])?)?;
    assert_eq!((abc["head"].clone(), upper["head"].clone()), (json!(4), json!(1)), "{abc} {upper}");

    let admin = |method: &str, path: &str| {
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-s3cret\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };
    let (status, raw) = http_request(server.addr, &admin("GET", "/admin/stores/team%2Fa%20b%3AZo%C3%AB%20(1)")).await?;
    assert_eq!(status, 200, "{raw}");
    assert!(raw.contains("\"storeId\":\"team/a b:Zo\u{eb} (1)\"") && raw.contains(r#""head":1"#), "{raw}");
    let (status, raw) = http_request(server.addr, &admin("POST", "/admin/stores/Abc/reset")).await?;
    assert_eq!(status, 200, "{raw}");
    let abc: Value = serde_json::from_str(&ok(dir, &["stores", "info", "--json", "abc"])?)?;
    assert_eq!(abc["head"], 4, "resetting Abc leaves abc alone: {abc}");
    let (status, raw) = http_request(server.addr, &admin("GET", "/admin/stores/%FF")).await?;
    assert!(status == 400 && raw.contains("not valid UTF-8"), "{raw}");
    let (status, raw) = http_request(server.addr, &admin("GET", "/admin/stores/team%2Fnobody")).await?;
    assert!(status == 404 && raw.contains(r#""team/nobody""#), "{raw}");
    Ok(())
}

/// Whatever the server accepts exports and re-imports byte for byte: args nested deeper than
/// a JSON parser's default recursion limit, integers past f64 precision, the client's own
/// spacing. A stored args text that is not JSON (edited by hand) fails export and pulls with
/// the event named, never a corrupt line or frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_events_export_and_reimport_byte_for_byte() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut server = TestServer::builder().data_dir(dir).token(Some(TOKEN)).start().await?;
    let mut c = server.connect("odd-args").await?;
    let deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
    let args = [
        deep.as_str(),
        r#"{"big": 123456789012345678901234567890, "f": 1.000000000000000000001}"#,
        r#"{ "spaced" :  [ 1 , 2 ] }"#,
    ];
    for (i, a) in args.iter().enumerate() {
        let seq = i as i64 + 1;
        let frame = format!(
            r#"{{"_tag":"Request","id":"p{seq}","tag":"SyncWsRpc.Push","payload":{{"storeId":"odd-args","batch":[{{"name":"e","args":{a},"seqNum":{seq},"parentSeqNum":{},"clientId":"c","sessionId":"s"}}],"backendId":{{"_tag":"None"}}}},"headers":[]}}"#,
            seq - 1
        );
        c.send_text(&frame).await?;
        let ack = c.recv_for(&format!("p{seq}")).await?;
        ensure!(is_push_ack(&ack), "args {i}: {ack}");
    }
    c.close().await?;
    let first = ok(dir, &["export", "odd-args"])?;
    for a in args {
        ensure!(first.contains(&format!(r#""args":{a}"#)), "args kept verbatim in {first:.300}");
    }
    server.stop().await?;
    let file = dir.join("odd.jsonl");
    std::fs::write(&file, &first)?;
    ok(dir, &["import", "odd-copy", file.to_str().context("path")?])?;
    let second = ok(dir, &["export", "odd-copy"])?;
    let events = |export: &str| export.lines().skip(1).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(events(&second), events(&first), "export → import → export is byte-identical");

    ok(
        dir,
        &[
            "db",
            "execute",
            "--write",
            "--command",
            "UPDATE events SET args = '{oops' WHERE seqNum = 2 \
             AND storeKey = (SELECT storeKey FROM stores WHERE storeId = 'odd-copy')",
        ],
    )?;
    let (success, _, stderr) = cli(dir, &["export", "odd-copy"])?;
    assert!(!success && stderr.contains("event 2") && stderr.contains("not JSON"), "{stderr}");
    let server = TestServer::builder().data_dir(dir).token(Some(TOKEN)).start().await?;
    let mut c = server.connect("odd-copy").await?;
    let id = c.id();
    c.send(&pull_request(&id, "odd-copy", None, false)).await?;
    let answer = c.recv_for(&id).await?;
    assert!(failure_message(&answer).contains("event 2"), "the pull fails and names the event: {answer}");
    Ok(())
}

/// Backups and restores that do not force clients through a reset: `backup` copies a live data
/// directory consistently; `export` carries the backend id and `import` restores it, unless
/// `--new-backend-id` (or a file without the header) says otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_keep_clients_going() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("live");
    std::fs::create_dir_all(&dir)?;
    let mut server = TestServer::builder().data_dir(&dir).token(Some(TOKEN)).start().await?;
    let mut c = server.connect("kept").await?;
    c.push("kept", chain(1, 40), None).await?;
    let (_, backend) = c.pull_seq_nums("kept").await?;

    // A backup beside the running server is a complete, servable data directory.
    let copy = tmp.path().join("backup");
    ok(&dir, &["backup", copy.to_str().context("path")?])?;
    let (success, _, stderr) = cli(&dir, &["backup", copy.to_str().context("path")?])?;
    assert!(!success && stderr.contains("already exists"), "{stderr}");
    let export = tmp.path().join("kept.jsonl");
    ok(&dir, &["export", "kept", "--output", export.to_str().context("path")?])?;
    server.stop().await?;
    let restored = TestServer::builder().data_dir(&copy).token(Some(TOKEN)).start().await?;
    let mut r = restored.connect("kept").await?;
    let id = r.id();
    r.send(&pull_request(&id, "kept", Some((&backend, 30)), false)).await?;
    let chunk = r.recv().await?;
    assert_eq!(
        seq_nums(&chunk["values"][0]),
        (31..=40).collect::<Vec<_>>(),
        "a client's cursor is valid on the backup: {chunk}"
    );
    drop(restored);

    // Import into a fresh data directory: the export's backend id, so clients continue.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir_all(&fresh)?;
    let (success, _, stderr) = cli(&fresh, &["import", "kept", export.to_str().context("path")?])?;
    assert!(success && stderr.contains(&format!("backend id {backend} (the export's")), "{stderr}");
    let info: Value = serde_json::from_str(&ok(&fresh, &["stores", "info", "--json", "kept"])?)?;
    assert_eq!(info["backendId"], backend.as_str());
    // --replace with another history must not keep the old id silently: --new-backend-id, or a
    // file without a header, gives a new one.
    let (success, _, stderr) =
        cli(&fresh, &["import", "--replace", "--new-backend-id", "kept", export.to_str().context("path")?])?;
    assert!(success && stderr.contains("new: its clients reset"), "{stderr}");
    let renewed: Value = serde_json::from_str(&ok(&fresh, &["stores", "info", "--json", "kept"])?)?;
    assert_ne!(renewed["backendId"], backend.as_str());
    let headless = tmp.path().join("headless.jsonl");
    let text = std::fs::read_to_string(&export)?;
    std::fs::write(&headless, text.lines().skip(1).collect::<Vec<_>>().join("\n"))?;
    ok(&fresh, &["import", "--replace", "kept", headless.to_str().context("path")?])?;
    let again: Value = serde_json::from_str(&ok(&fresh, &["stores", "info", "--json", "kept"])?)?;
    assert_ne!(again["backendId"], renewed["backendId"]);
    assert_ne!(again["backendId"], backend.as_str());
    Ok(())
}

/// Command-line conventions: `--data-dir` in any position, errors as one line without a
/// backtrace (even with `RUST_BACKTRACE=1`), quiet when the reader of `export` goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_conventions() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("d");
    let events: Vec<String> = (1..=3000)
        .map(|s| {
            json!({ "seqNum": s, "parentSeqNum": s - 1, "name": "e", "args": { "pad": "x".repeat(100) },
                    "createdAt": "2026-01-01T00:00:00.000Z", "clientId": "c", "sessionId": "s" })
            .to_string()
        })
        .collect();
    let file = tmp.path().join("big.jsonl");
    std::fs::write(&file, events.join("\n"))?;
    let bin = env!("CARGO_BIN_EXE_livestore-sync");
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        binary::command(bin).env_remove("LIVESTORE_SYNC_DATA_DIR").args(args).envs(envs.iter().copied()).output()
    };
    let d = dir.to_str().context("path")?;
    assert!(run(&["import", "--data-dir", d, "big", file.to_str().context("path")?], &[])?.status.success());
    for args in [
        vec!["db", "tables", "--data-dir", d],
        vec!["db", "--data-dir", d, "tables"],
        vec!["--data-dir", d, "db", "tables"],
    ] {
        let out = run(&args, &[])?;
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = run(&["stores", "info", "--data-dir", d, "nope"], &[("RUST_BACKTRACE", "1")])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.starts_with("error: store \"nope\" does not exist"), "{stderr}");
    assert!(!stderr.contains("backtrace") && stderr.lines().count() == 1, "{stderr}");

    // `export | head -1`: the reader leaves after one line; the exporter exits quietly.
    let mut child = binary::command(bin)
        .args(["export", "--data-dir", d, "big"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut first = String::new();
    {
        use std::io::BufRead;
        let stdout = child.stdout.take().context("stdout")?;
        std::io::BufReader::new(stdout).read_line(&mut first)?;
    }
    let out = child.wait_with_output()?;
    assert!(first.contains("livestoreSyncExport"), "{first}");
    assert!(out.status.success() && out.stderr.is_empty(), "{:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    Ok(())
}
