//! Every other surface: the simple JSON protocol, the LiveStore HTTP transport (raw),
//! CORS, forwarded headers, /health and /metrics.

use anyhow::{Context, Result};
use livestore_sync_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

fn simple_url(server: &TestServer, store: &str, extra: &str) -> String {
    format!("{}/websocket?storeId={store}{extra}", server.ws_base())
}

async fn simple_client(server: &TestServer, store: &str, client_id: &str) -> Result<WsClient> {
    let mut c = WsClient::connect(&simple_url(server, store, &format!("&clientId={client_id}"))).await?;
    c.send(&json!({ "type": "auth", "token": TOKEN })).await?;
    assert_eq!(c.recv().await?, json!({ "type": "auth_ok" }));
    Ok(c)
}

fn simple_event(id: &str, text: &str) -> Value {
    json!({ "id": id, "type": "messageCreated", "data": { "text": text }, "timestamp": "2026-01-01T00:00:00Z" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_auth_first_message_and_every_error_keeps_the_connection_usable() -> Result<()> {
    let server = TestServer::start().await?;
    let store = unique_store("simple-auth");
    let mut c = WsClient::connect(&simple_url(&server, &store, "")).await?;
    c.send(&json!({ "type": "pull" })).await?;
    let e = c.recv().await?;
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("unauthorized")), "{e}");
    c.send(&json!({ "type": "auth", "token": TOKEN })).await?;
    assert_eq!(c.recv().await?, json!({ "type": "auth_ok" }));
    for (frame, code) in [
        ("not json".to_string(), "invalid_json"),
        (json!({ "kind": "push" }).to_string(), "invalid_message"),
        (json!({ "type": "teleport" }).to_string(), "unknown_type"),
        (json!({ "type": "push", "events": [] }).to_string(), "invalid_message"),
        (json!({ "type": "push", "events": [{ "type": "x" }] }).to_string(), "invalid_message"),
        (json!({ "type": "pull", "since": "last tuesday" }).to_string(), "invalid_message"),
        (json!({ "type": "pull", "limit": 0 }).to_string(), "invalid_message"),
        (json!({ "type": "pull", "limit": 5000 }).to_string(), "invalid_message"),
    ] {
        c.send_text(&frame).await?;
        let e = c.recv().await?;
        assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some(code)), "{frame} → {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    c.send(&json!({ "type": "ping" })).await?;
    assert_eq!(c.recv().await?, json!({ "type": "pong" }));

    // A wrong token in the first message closes the connection.
    let mut bad = WsClient::connect(&simple_url(&server, &store, "")).await?;
    bad.send(&json!({ "type": "auth", "token": "nope" })).await?;
    assert_eq!(bad.recv().await?["code"], "unauthorized");
    assert_eq!(bad.recv_close().await?, Some(1008));
    // A wrong token in the URL is refused at the upgrade.
    assert!(WsClient::connect(&simple_url(&server, &store, "&token=nope")).await.is_err());
    // The right token in the URL skips the auth message.
    let mut url_auth = WsClient::connect(&simple_url(&server, &store, &format!("&token={TOKEN}"))).await?;
    url_auth.send(&json!({ "type": "pull" })).await?;
    assert_eq!(url_auth.recv().await?["type"], "events");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_push_is_sequenced_idempotent_and_broadcast_to_other_clients() -> Result<()> {
    let server = TestServer::start().await?;
    let store = unique_store("simple-push");
    let mut a = simple_client(&server, &store, "device-a").await?;
    let mut b = simple_client(&server, &store, "device-b").await?;
    a.send(&json!({ "type": "push", "events": [simple_event("event-1", "hi"), simple_event("event-2", "there")] }))
        .await?;
    assert_eq!(a.recv().await?, json!({ "type": "ack", "ids": ["event-1", "event-2"], "seqNums": [1, 2] }));
    let broadcast = b.recv().await?;
    assert_eq!(broadcast["type"], "events");
    let events = broadcast["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["id"], "event-1");
    assert_eq!(events[0]["seqNum"], 1);
    assert_eq!(events[0]["type"], "messageCreated");
    assert_eq!(events[0]["data"], json!({ "text": "hi" }));
    assert_eq!(events[0]["clientId"], "device-a");
    assert!(broadcast["timestamp"].as_str().is_some());
    // The pusher gets its ack, not its own broadcast.
    a.assert_quiet_simple().await?;

    // A retried id is acknowledged with its original seqNum and stored once; ids repeated
    // inside one batch too.
    a.send(&json!({ "type": "push", "events": [simple_event("event-2", "there"), simple_event("event-3", "new"), simple_event("event-3", "new")] }))
        .await?;
    assert_eq!(
        a.recv().await?,
        json!({ "type": "ack", "ids": ["event-2", "event-3", "event-3"], "seqNums": [2, 3, 3] })
    );
    let only_new = b.recv().await?;
    assert_eq!(only_new["events"].as_array().map(|e| e.len()), Some(1));
    assert_eq!(only_new["events"][0]["id"], "event-3");
    a.send(&json!({ "type": "ack", "seqNum": 3 })).await?;
    a.send(&json!({ "type": "pull", "since": 0 })).await?;
    let all = a.recv().await?;
    let seqs: Vec<i64> = all["events"].as_array().into_iter().flatten().filter_map(|e| e["seqNum"].as_i64()).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_pull_since_a_seq_num_or_a_timestamp_with_a_limit() -> Result<()> {
    let server = TestServer::start().await?;
    let store = unique_store("simple-pull");
    let mut a = simple_client(&server, &store, "a").await?;
    a.send(&json!({ "type": "push", "events": [simple_event("e1", "1"), simple_event("e2", "2")] })).await?;
    a.recv().await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.send(&json!({ "type": "pull", "since": 0 })).await?;
    let first = a.recv().await?;
    let cut = first["events"][1]["timestamp"].as_str().context("timestamp")?.to_string();
    tokio::time::sleep(Duration::from_millis(20)).await;
    a.send(&json!({ "type": "push", "events": [simple_event("e3", "3"), simple_event("e4", "4"), simple_event("e5", "5")] }))
        .await?;
    a.recv().await?;
    let ids = |v: &Value| -> Vec<String> {
        v["events"].as_array().into_iter().flatten().filter_map(|e| e["id"].as_str().map(str::to_string)).collect()
    };
    a.send(&json!({ "type": "pull", "since": 2 })).await?;
    assert_eq!(ids(&a.recv().await?), vec!["e3", "e4", "e5"]);
    a.send(&json!({ "type": "pull", "since": 1, "limit": 2 })).await?;
    let limited = a.recv().await?;
    assert_eq!(ids(&limited), vec!["e2", "e3"]);
    assert_eq!(limited["hasMore"], true);
    a.send(&json!({ "type": "pull", "since": cut })).await?;
    assert_eq!(ids(&a.recv().await?), vec!["e3", "e4", "e5"]);
    a.send(&json!({ "type": "pull", "since": "2000-01-01T00:00:00+02:00" })).await?;
    assert_eq!(ids(&a.recv().await?).len(), 5);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn livestore_and_simple_clients_share_one_log() -> Result<()> {
    let server = TestServer::start().await?;
    let store = unique_store("shared");
    let mut simple = simple_client(&server, &store, "device").await?;
    let mut ls = server.connect(&store).await?;
    let lid = ls.id();
    ls.send(&pull_request(&lid, &store, None, true)).await?;
    ls.recv().await?;
    ls.send(&ack(&lid)).await?;

    simple.send(&json!({ "type": "push", "events": [simple_event("s-1", "from simple")] })).await?;
    assert_eq!(simple.recv().await?["seqNums"], json!([1]));
    let chunk = ls.recv().await?;
    let item = &chunk["values"][0]["batch"][0]["eventEncoded"];
    assert_eq!(item["seqNum"], 1);
    assert_eq!(item["parentSeqNum"], 0);
    assert_eq!(item["name"], "messageCreated");
    assert_eq!(item["args"], json!({ "text": "from simple" }));

    // A LiveStore client that was at head 0 must rebase now.
    let (_, stale) = ls.push(&store, vec![event(1, 0)], None).await?;
    assert_eq!(failure_error(&stale).map(|e| e["_tag"].clone()), Some(json!("ServerAheadError")));
    let (_, ok) = ls.push(&store, vec![event(2, 1)], None).await?;
    assert!(is_push_ack(&ok), "{ok}");
    let broadcast = simple.recv().await?;
    assert_eq!(broadcast["events"][0]["seqNum"], 2);
    assert_eq!(broadcast["events"][0]["type"], "todoCreated-v1");
    assert_eq!(broadcast["events"][0]["id"], "seq-2");
    Ok(())
}

async fn post(server: &TestServer, query: &str, body: &str) -> Result<(u16, String)> {
    http_post(server.addr, &format!("/?{query}"), body).await
}

fn http_query(store: &str, token: &str) -> String {
    let payload = urlencode(&urlencode(&json!({ "authToken": token }).to_string()));
    format!("storeId={store}&payload={payload}&transport=http")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_transport_raw_requests() -> Result<()> {
    let server = TestServer::start().await?;
    let store = unique_store("http");
    let q = http_query(&store, TOKEN);
    let ping = json!({ "_tag": "Request", "id": "32", "tag": "SyncHttpRpc.Ping", "payload": { "storeId": store }, "headers": [] });
    let (status, body) = post(&server, &q, &ping.to_string()).await?;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body)?,
        json!([{ "_tag": "Exit", "requestId": "32", "exit": { "_tag": "Success", "value": { "_tag": "SyncMessage.Pong" } } }])
    );
    let push = json!({ "_tag": "Request", "id": "33", "tag": "SyncHttpRpc.Push", "payload": { "storeId": store, "batch": chain(1, 250), "backendId": { "_tag": "None" } }, "headers": [] });
    let (_, body) = post(&server, &q, &push.to_string()).await?;
    let reply: Value = serde_json::from_str(&body)?;
    assert!(is_push_ack(&reply[0]), "{reply}");
    let pull = json!({ "_tag": "Request", "id": "34", "tag": "SyncHttpRpc.Pull", "payload": { "storeId": store, "cursor": { "_tag": "None" } }, "headers": [] });
    let (_, body) = post(&server, &q, &pull.to_string()).await?;
    let reply: Value = serde_json::from_str(&body)?;
    let frames = reply.as_array().cloned().unwrap_or_default();
    assert_eq!(frames.len(), 4, "three chunks and an Exit");
    assert_eq!(frames.iter().take(3).map(|f| seq_nums(&f["values"][0]).len()).collect::<Vec<_>>(), vec![100, 100, 50]);
    assert_eq!(frames[0]["values"][0]["pageInfo"], json!({ "_tag": "MoreKnown", "remaining": 150 }));
    assert_eq!(frames[3], json!({ "_tag": "Exit", "requestId": "34", "exit": { "_tag": "Success" } }));
    let backend = frames[0]["values"][0]["backendId"].as_str().unwrap_or_default().to_string();
    let stale = json!({ "_tag": "Request", "id": "35", "tag": "SyncHttpRpc.Push", "payload": { "storeId": store, "batch": [event(2, 1)], "backendId": { "_tag": "Some", "value": backend } }, "headers": [] });
    let (_, body) = post(&server, &q, &stale.to_string()).await?;
    let reply: Value = serde_json::from_str(&body)?;
    assert_eq!(failure_error(&reply[0]).map(|e| e["_tag"].clone()), Some(json!("ServerAheadError")));
    let mismatch = json!({ "_tag": "Request", "id": "38", "tag": "SyncHttpRpc.Pull", "payload": { "storeId": store, "cursor": { "_tag": "Some", "value": { "backendId": "nope", "eventSequenceNumber": 1 } } }, "headers": [] });
    let (_, body) = post(&server, &q, &mismatch.to_string()).await?;
    let reply: Value = serde_json::from_str(&body)?;
    assert_eq!(failure_error(&reply[0]).map(|e| e["_tag"].clone()), Some(json!("BackendIdMismatchError")));
    // Defects: a JSON array body, a WebSocket tag, an empty body.
    let (_, body) = post(&server, &q, &json!([ping, ping]).to_string()).await?;
    assert_eq!(
        serde_json::from_str::<Value>(&body)?,
        json!([{ "_tag": "Defect", "defect": "Unknown request tag: undefined" }])
    );
    let ws_tag = json!({ "_tag": "Request", "id": "42", "tag": "SyncWsRpc.Pull", "payload": {} });
    let (_, body) = post(&server, &q, &ws_tag.to_string()).await?;
    assert_eq!(serde_json::from_str::<Value>(&body)?[0]["defect"], "Unknown request tag: SyncWsRpc.Pull");
    let (status, body) = post(&server, &q, "").await?;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body)?[0]["_tag"], "Defect");
    // A bad token: 400 text.
    let (status, body) = post(&server, &http_query(&store, "nope"), &ping.to_string()).await?;
    assert_eq!(status, 400);
    assert!(body.contains("Invalid auth token"), "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_and_health() -> Result<()> {
    let mut server = TestServer::builder().token(None).config(|c| c.cors = true).start().await?;
    let req = "OPTIONS /?storeId=s&transport=http HTTP/1.1\r\nHost: x\r\nOrigin: http://app.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type,x-livestore-store-id\r\nConnection: close\r\n\r\n";
    let (status, raw) = http_request(server.addr, req).await?;
    assert_eq!(status, 204, "{raw}");
    let lower = raw.to_ascii_lowercase();
    assert!(lower.contains("access-control-allow-origin: *"), "{raw}");
    assert!(lower.contains("access-control-allow-methods: get, post, options"), "{raw}");
    assert!(lower.contains("access-control-allow-headers: content-type,x-livestore-store-id"), "{raw}");
    let (status, raw) =
        http_request(server.addr, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    assert_eq!(status, 200, "{raw}");
    assert!(raw.to_ascii_lowercase().contains("access-control-allow-origin: *"));
    server.stop().await?;
    Ok(())
}

/// Parse Prometheus text: `name{labels} value` → value, checking every line's shape.
fn parse_prometheus(text: &str) -> Result<Vec<(String, f64)>> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (key, value) = line.rsplit_once(' ').with_context(|| format!("bad line {line:?}"))?;
        let value: f64 = value.parse().with_context(|| format!("bad value in {line:?}"))?;
        let name = key.split('{').next().unwrap_or_default();
        anyhow::ensure!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        samples.push((key.to_string(), value));
    }
    Ok(samples)
}

fn sample(samples: &[(String, f64)], key: &str) -> f64 {
    samples.iter().filter(|(k, _)| k == key).map(|(_, v)| *v).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_counters_move() -> Result<()> {
    let server = TestServer::start().await?;
    let metrics = |server: &TestServer| {
        let addr = server.addr;
        async move {
            let (status, raw) =
                http_request(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
            anyhow::ensure!(status == 200, "{raw}");
            parse_prometheus(raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default())
        }
    };
    // Every series exists from the start, at zero if nothing happened yet.
    let fresh = metrics(&server).await?;
    let keys: Vec<&str> = fresh.iter().map(|(k, _)| k.as_str()).collect();
    for key in [
        "livestore_sync_pushes_rejected_total{reason=\"storage-error\"}",
        "livestore_sync_connections_refused_total{reason=\"auth\"}",
        "livestore_sync_connections_refused_total{reason=\"pending-evicted\"}",
        "livestore_sync_slow_consumers_closed_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(keys.contains(&key), "{key} missing from a fresh /metrics: {keys:?}");
    }
    assert!(
        keys.iter().any(|k| k.starts_with("livestore_sync_build_info{") && k.contains("component_sha256=")),
        "{keys:?}"
    );
    assert!(sample(&fresh, "process_resident_memory_bytes") > 1e6);
    let store = unique_store("metrics");
    let mut c = server.connect(&store).await?;
    c.push(&store, chain(1, 1), None).await?;
    let before = metrics(&server).await?;
    assert!(WsClient::connect(&sync_url(&server.ws_base(), &store, "wrong-token")).await.is_err());
    c.push(&store, chain(2, 4), None).await?;
    c.push(&store, chain(2, 2), None).await?; // rejected: server ahead
    c.pull_all(&store, None).await?;
    // The shard records a frame's handling time after the component returns, and the component
    // has already sent its answer by then: the last frame's sample can land just after the
    // client saw the answer. Read until it has (or give up after 5 s and let the asserts say why).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let after = loop {
        let after = metrics(&server).await?;
        let handled = sample(&after, "livestore_sync_frame_handle_seconds_count")
            - sample(&before, "livestore_sync_frame_handle_seconds_count");
        if handled >= 4.0 || std::time::Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let delta = |key: &str| sample(&after, key) - sample(&before, key);
    assert!(delta("livestore_sync_events_pushed_total") >= 3.0);
    assert!(delta("livestore_sync_pushes_rejected_total{reason=\"server-ahead\"}") >= 1.0);
    assert!(delta("livestore_sync_pull_chunks_sent_total") >= 1.0);
    assert!(delta("livestore_sync_connections_refused_total{reason=\"auth\"}") >= 1.0, "a bad token is counted");
    assert!(delta("livestore_sync_push_duration_seconds_count") >= 1.0);
    // Where a frame's time goes: two pushes and a pull (request and Acks) waited and were
    // handled; the accepted batch reached storage.
    assert!(delta("livestore_sync_frame_wait_seconds_count") >= 4.0);
    assert!(delta("livestore_sync_frame_handle_seconds_count") >= 4.0);
    assert!(delta("livestore_sync_storage_append_seconds_count") >= 1.0);
    assert!(delta("livestore_sync_storage_append_seconds_sum") > 0.0);
    assert!(sample(&after, "livestore_sync_open_connections") >= 1.0);
    assert!(sample(&after, "livestore_sync_active_stores") >= 1.0);
    Ok(())
}
