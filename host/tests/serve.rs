//! The `livestore-sync serve` binary: configuration from flags and `.dev.vars`, serving, and a
//! graceful stop on SIGTERM that keeps every acknowledged event.

use anyhow::{bail, Context, Result};
use livestore_sync_tests::*;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_livestore-sync");

fn serve(dir: &std::path::Path, extra: &[&str]) -> Result<binary::Served> {
    serve_env(dir, extra, &[])
}

fn serve_env(dir: &std::path::Path, extra: &[&str], envs: &[(&str, &str)]) -> Result<binary::Served> {
    binary::serve(BIN, dir, &dir.join("data"), extra, envs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_dev_vars_serves_and_stops_gracefully_on_sigterm() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    std::fs::write(tmp.path().join(".dev.vars"), format!("# wrangler-style config\nAUTH_TOKEN=\"{TOKEN}\"\n"))?;
    let mut served = serve(tmp.path(), &[])?;
    let base = format!("ws://{}", served.addr);

    // The token from .dev.vars is enforced.
    let refused = format!("{base}/?storeId=srv&transport=ws");
    match tokio_tungstenite::connect_async(&refused).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status().as_u16(), 400),
        other => bail!("a connection without the .dev.vars token must be refused: {:?}", other.map(|_| ())),
    }
    let payload = urlencode(&urlencode(&serde_json::json!({ "authToken": TOKEN }).to_string()));
    let mut c = WsClient::connect(&format!("{base}/?storeId=srv&payload={payload}&transport=ws")).await?;
    let (_, ack) = c.push("srv", chain(1, 20), None).await?;
    assert!(is_push_ack(&ack), "{ack}");
    let line = binary::wait_for_log(&served.log, "push store=\"srv\"")?;
    assert!(
        line.contains("events=20") && line.contains("result=ok") && line.contains("client=\"client-raw\""),
        "{line}"
    );
    assert!(!line.contains(TOKEN), "tokens never appear in logs: {line}");
    let (status, _) = http_request(served.addr, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    assert_eq!(status, 200);

    let kill = Command::new("kill").args(["-TERM", &served.child.id().to_string()]).status()?;
    assert!(kill.success());
    assert_eq!(c.recv_close().await?, Some(1001));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = served.child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            served.child.kill()?;
            bail!("the server did not stop within 20 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "graceful stop exits 0: {status:?}");

    // Everything acknowledged is there after the restart.
    let mut served = serve(tmp.path(), &[])?;
    let mut c = WsClient::connect(&format!("ws://{}/?storeId=srv&payload={payload}&transport=ws", served.addr)).await?;
    assert_eq!(c.pull_seq_nums("srv").await?.0, (1..=20).collect::<Vec<_>>());
    served.child.kill()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_and_flags_override_the_environment() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut served = serve(tmp.path(), &["--log-format", "json", "--auth-token", "from-flag"])?;
    let mut c = WsClient::connect(&format!(
        "ws://{}/?storeId=j&payload={}&transport=ws",
        served.addr,
        urlencode(&serde_json::json!({ "authToken": "from-flag" }).to_string())
    ))
    .await?;
    // Fields keep their plain value in JSON (text logs quote and escape them).
    let opened = binary::wait_for_log(&served.log, "connection opened")?;
    let v: serde_json::Value = serde_json::from_str(&opened).with_context(|| format!("not JSON: {opened}"))?;
    assert_eq!(v["fields"]["store_id"], "j", "{opened}");
    c.push("j", chain(1, 3), None).await?;
    // The component's push line arrives as fields, not as one string to parse again.
    let line = binary::wait_for_log(&served.log, r#""message":"push""#)?;
    let v: serde_json::Value = serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))?;
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["target"], "livestore_sync::component", "{line}");
    let f = &v["fields"];
    assert_eq!(
        (&f["store"], &f["events"], &f["head"], &f["result"]),
        (&json!("j"), &json!(3), &json!(3), &json!("ok")),
        "{line}"
    );
    assert_eq!(f["client"], "client-raw", "{line}");
    let (pulled, _) = c.pull_seq_nums("j").await?;
    assert_eq!(pulled, [1, 2, 3]);
    let line = binary::wait_for_log(&served.log, r#""message":"pull""#)?;
    let v: serde_json::Value = serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))?;
    assert_eq!((&v["fields"]["live"], &v["fields"]["cursor"]), (&json!(false), &json!(0)), "{line}");
    served.child.kill()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_appear_in_logs_even_at_debug_level() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let secret = "tok-9f8e7d6c5b4a";
    let served = serve_env(tmp.path(), &["--auth-token", secret], &[("DEBUG", "*")])?;
    let payload = urlencode(&urlencode(&serde_json::json!({ "authToken": secret }).to_string()));
    let mut c = WsClient::connect(&format!("ws://{}/?storeId=t&payload={payload}&transport=ws", served.addr)).await?;
    let mut req = push_request("1", "t", chain(1, 1), None);
    req["payload"]["payload"] = serde_json::json!({ "authToken": secret });
    c.send(&req).await?;
    assert!(is_push_ack(&c.recv().await?));
    // A refused token must not be echoed either.
    let bad = urlencode(&urlencode(&serde_json::json!({ "authToken": "wrong-tok-123" }).to_string()));
    assert!(WsClient::connect(&format!("ws://{}/?storeId=t&payload={bad}&transport=ws", served.addr)).await.is_err());
    drop(c);
    let mut lines = Vec::new();
    while let Ok(line) = served.log.recv_timeout(Duration::from_millis(500)) {
        lines.push(line);
    }
    assert!(
        lines.iter().any(|l| l.contains("frame in") && l.contains("***")),
        "frames are logged at debug with the token masked:\n{}",
        lines.join("\n")
    );
    assert!(lines.iter().any(|l| l.contains("push store=\"t\"")));
    for line in &lines {
        assert!(!line.contains(secret) && !line.contains("wrong-tok-123"), "a token leaked into the log: {line}");
    }
    Ok(())
}

/// Store ids are quoted and escaped in log lines: an id with a newline cannot forge a line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_ids_cannot_forge_log_lines() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let served = serve(tmp.path(), &[])?;
    let store = "evil\n2026-01-01T00:00:00Z  INFO forged line";
    let mut c = WsClient::connect(&sync_url(&format!("ws://{}", served.addr), store, TOKEN)).await?;
    let (_, ack) = c.push(store, chain(1, 1), None).await?;
    assert!(is_push_ack(&ack), "{ack}");
    let line = binary::wait_for_log(&served.log, "push store=")?;
    assert!(line.contains(r#"push store="evil\n2026-01-01T00:00:00Z  INFO forged line""#), "{line}");
    drop(c);
    let _ = binary::wait_for_log(&served.log, "connection closed")?;
    while let Ok(line) = served.log.recv_timeout(Duration::from_millis(300)) {
        assert!(!line.contains("forged line") || line.contains(r#"evil\n"#), "a forged log line: {line}");
    }
    Ok(())
}

/// `--store-id-pattern` narrows the rule for connecting clients (here the check of
/// `@livestore/sync-cf`'s setup guide); an invalid pattern stops the server with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_id_pattern_refuses_other_ids() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let served = serve(tmp.path(), &["--store-id-pattern", "^[a-zA-Z0-9-_]+$"])?;
    let base = format!("ws://{}", served.addr);
    WsClient::connect(&sync_url(&base, "team-1_a", TOKEN)).await?;
    let upgrade = "Connection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
    for query in ["storeId=team%201&transport=ws", "storeId=team%201"] {
        let req = format!("GET /?{query} HTTP/1.1\r\nHost: x\r\n{upgrade}\r\n\r\n");
        let (status, body) = http_request(served.addr, &req).await?;
        assert_eq!(status, 400, "{body}");
        assert!(
            body.contains(r#"invalid storeId "team 1": this server only accepts ids matching ^[a-zA-Z0-9-_]+$"#),
            "{body}"
        );
    }
    drop(served);
    let out = binary::command(BIN)
        .args(["serve", "--port", "0", "--store-id-pattern", "[a-", "--data-dir"])
        .arg(tmp.path().join("data"))
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--store-id-pattern \"[a-\" is not a valid regular expression"),
        "{stderr}"
    );
    Ok(())
}

/// The simple protocol's `auth` message carries the token in `token`, with any spacing: it
/// is masked by structure in debug logs, like every `authToken` and `Authorization` value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_protocol_tokens_are_masked_in_debug_logs() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let secret = "tok-5a4b3c2d1e";
    let served = serve_env(tmp.path(), &["--auth-token", secret], &[("DEBUG", "1")])?;
    let mut c = WsClient::connect(&format!("ws://{}/websocket?storeId=m", served.addr)).await?;
    c.send_text(&format!(r#"{{ "type" : "auth" , "token" : "{secret}" }}"#)).await?;
    assert_eq!(c.recv().await?, serde_json::json!({ "type": "auth_ok" }));
    c.send_text(&format!(r#"{{"type":"ping","Authorization":"Bearer {secret}","x":{{"authToken" : "{secret}"}}}}"#))
        .await?;
    assert_eq!(c.recv().await?["type"], "pong");
    c.send(&serde_json::json!({ "type": "push", "events": [{ "id": "e1", "type": "note" }] })).await?;
    assert_eq!(c.recv().await?["type"], "ack");
    c.send(&serde_json::json!({ "type": "pull" })).await?;
    assert_eq!(c.recv().await?["type"], "events");
    drop(c);
    // A refused request is logged with the peer's address, never with its query (token).
    let bad = format!("ws://{}/?storeId=m&transport=ws&payload=%7B%22authToken%22%3A%22{secret}x%22%7D", served.addr);
    assert!(WsClient::connect(&bad).await.is_err());
    let mut lines = served.startup.clone();
    while let Ok(line) = served.log.recv_timeout(Duration::from_millis(500)) {
        lines.push(line);
    }
    assert!(lines.iter().filter(|l| l.contains("frame in") && l.contains("***")).count() >= 2, "{}", lines.join("\n"));
    for needle in [
        "simple push store=\"m\" conn=1 client=\"simple-1\" events=1 head=1 result=ok",
        "simple pull store=\"m\" conn=1 events=1 result=ok",
    ] {
        assert!(lines.iter().any(|l| l.contains(needle)), "no {needle:?} in\n{}", lines.join("\n"));
    }
    let refused = lines.iter().find(|l| l.contains("refused a request")).context("no refusal line")?;
    assert!(refused.contains("peer=127.0.0.1:") && refused.contains("status=400"), "{refused}");
    let started = served.startup.last().context("no start-up line")?;
    let data = std::fs::canonicalize(tmp.path().join("data"))?;
    assert!(
        started.contains("component_sha256=")
            && started.contains("version=")
            && started.contains(&data.display().to_string()),
        "{started}"
    );
    for line in &lines {
        assert!(!line.contains(secret), "a token leaked into the log: {line}");
        // DEBUG=1 is for this program: no other crate's debug lines (wasmtime's compiler alone
        // writes tens of thousands while it compiles the component on a cold cache).
        assert!(!line.contains("DEBUG") || line.contains(" livestore_sync"), "another crate at debug: {line}");
    }
    Ok(())
}

/// A `--dev-vars` file named on the command line must exist (a typo must not start the server
/// without the token it holds); the default `.dev.vars` stays optional.
#[test]
fn a_named_dev_vars_file_that_does_not_exist_is_an_error() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = binary::command(BIN)
        .args(["serve", "--port", "0", "--dev-vars", "no-such.dev.vars", "--data-dir"])
        .arg(tmp.path().join("data"))
        .current_dir(tmp.path())
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the server must not start: {stderr}");
    assert!(stderr.contains("no-such.dev.vars"), "{stderr}");
    Ok(())
}

/// Listening beyond loopback with no token and no hook says so loudly at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listening_on_all_interfaces_without_a_token_warns() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let served = serve(tmp.path(), &["--host", "0.0.0.0"])?;
    let line = binary::wait_for_log(&served.log, "NO AUTH TOKEN")?;
    assert!(line.contains("WARN"), "{line}");
    let tmp2 = tempfile::tempdir()?;
    let quiet = serve(tmp2.path(), &["--host", "127.0.0.1"])?;
    drop(served);
    while let Ok(line) = quiet.log.recv_timeout(Duration::from_millis(300)) {
        assert!(!line.contains("NO AUTH TOKEN"), "loopback needs no warning: {line}");
    }
    Ok(())
}

/// A server that cannot listen fails before it creates anything on disk.
#[test]
fn a_taken_port_fails_before_anything_is_created() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port().to_string();
    let data = tmp.path().join("never-created");
    let out = binary::command(BIN).args(["serve", "--port", &port, "--data-dir"]).arg(&data).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains(&format!("listening on 127.0.0.1:{port}")), "{stderr}");
    assert!(!data.exists(), "the data directory was created");
    Ok(())
}
