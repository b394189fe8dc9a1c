//! Limits, backpressure and hostile input (issue: reliability and security).

use anyhow::{bail, Result};
use livestore_sync_tests::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn refused_status(result: Result<WsClient>) -> Option<u16> {
    match result {
        Ok(_) => None,
        Err(e) => match e.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
            Some(tokio_tungstenite::tungstenite::Error::Http(res)) => Some(res.status().as_u16()),
            _ => Some(0),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_limit_closes_with_1009_and_the_server_keeps_serving() -> Result<()> {
    let server = TestServer::builder().config(|c| c.max_frame_bytes = 64 * 1024).start().await?;
    let store = unique_store("big-frame");
    let mut c = server.connect(&store).await?;
    let huge = vec![
        json!({ "name": "x", "args": "y".repeat(100_000), "seqNum": 1, "parentSeqNum": 0, "clientId": "c", "sessionId": "s" }),
    ];
    c.send(&push_request("1", &store, huge, None)).await?;
    assert_eq!(c.recv_close().await?, Some(1009));
    let mut again = server.connect(&store).await?;
    let (_, ack) = again.push(&store, chain(1, 1), None).await?;
    assert!(is_push_ack(&ack), "{ack}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_over_the_event_limit_is_rejected_whole() -> Result<()> {
    let server = TestServer::builder().config(|c| c.max_push_events = 50).start().await?;
    let store = unique_store("many");
    let mut c = server.connect(&store).await?;
    let (_, rejected) = c.push(&store, chain(1, 51), None).await?;
    let error = failure_error(&rejected).cloned().unwrap_or(Value::Null);
    assert_eq!(error["_tag"], "UnknownError", "{rejected}");
    assert!(error["cause"]["message"].as_str().unwrap_or_default().contains("limit of 50"), "{error}");
    assert!(c.pull_seq_nums(&store).await?.0.is_empty());
    let (_, ok) = c.push(&store, chain(1, 50), None).await?;
    assert!(is_push_ack(&ok));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_get_503_until_one_closes() -> Result<()> {
    let server = TestServer::builder().config(|c| c.max_connections = 2).start().await?;
    let store = unique_store("conns");
    let a = server.connect(&store).await?;
    let _b = server.connect(&store).await?;
    assert_eq!(refused_status(server.connect(&store).await), Some(503));
    a.close().await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match server.connect(&store).await {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => bail!("the slot was not freed: {e}"),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_active_ones_are_not() -> Result<()> {
    let server = TestServer::builder().config(|c| c.idle_timeout = Some(Duration::from_millis(700))).start().await?;
    let store = unique_store("idle");
    let mut idle = server.connect(&store).await?;
    let mut busy = server.connect(&store).await?;
    let started = Instant::now();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        busy.send_text(r#"{"_tag":"Ping"}"#).await?;
        assert_eq!(busy.recv().await?, json!({ "_tag": "Pong" }));
    }
    assert_eq!(idle.recv_close().await?, Some(1001));
    assert!(started.elapsed() >= Duration::from_millis(700));
    busy.send_text(r#"{"_tag":"Ping"}"#).await?;
    assert_eq!(busy.recv().await?, json!({ "_tag": "Pong" }));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_stores_are_evicted_and_reopened_from_storage() -> Result<()> {
    let server = TestServer::builder()
        .config(|c| {
            c.shards = 1;
            c.max_open_stores = 2;
        })
        .start()
        .await?;
    let stores: Vec<String> = (0..4).map(|i| unique_store(&format!("evict{i}"))).collect();
    let mut a = server.connect(&stores[0]).await?;
    let mut b = server.connect(&stores[1]).await?;
    a.push(&stores[0], chain(1, 3), None).await?;
    b.push(&stores[1], chain(1, 2), None).await?;
    // Both open stores have clients: a third store cannot open.
    assert_eq!(refused_status(server.connect(&stores[2]).await), Some(400));
    a.close().await?;
    b.close().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for s in &stores[2..] {
        let mut c = server.connect(s).await?;
        c.push(s, chain(1, 1), None).await?;
        c.close().await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The evicted store comes back with its head and events.
    let mut a = server.connect(&stores[0]).await?;
    let (_, stale) = a.push(&stores[0], chain(1, 1), None).await?;
    assert_eq!(failure_error(&stale).map(|e| e["minimumExpectedNum"].clone()), Some(json!(3)));
    assert_eq!(a.pull_seq_nums(&stores[0]).await?.0, vec![1, 2, 3]);
    Ok(())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_puller_that_stops_reading_is_cut_off_without_stalling_others() -> Result<()> {
    let server = TestServer::builder().config(|c| c.max_queue_bytes = 512 * 1024).start().await?;
    let store = unique_store("slow");
    let mut slow = server.connect(&store).await?;
    let mut fast = server.connect(&store).await?;
    let mut pusher = server.connect(&store).await?;
    for (c, id) in [(&mut slow, "s"), (&mut fast, "f")] {
        c.send(&pull_request(id, &store, None, true)).await?;
        c.recv().await?;
        c.send(&ack(id)).await?;
    }
    let rss_before = rss_kib();
    // ~40 MB of broadcasts: far more than socket buffers plus the slow client's queue budget.
    let big = "z".repeat(100_000);
    let mut received_fast = 0;
    let mut slowest_ack = Duration::ZERO;
    for round in 0..400i64 {
        let ev = json!({ "name": "blob", "args": big, "seqNum": round + 1, "parentSeqNum": round, "clientId": "p", "sessionId": "p" });
        let started = Instant::now();
        let (_, ack) = pusher.push(&store, vec![ev], None).await?;
        slowest_ack = slowest_ack.max(started.elapsed());
        assert!(is_push_ack(&ack), "round {round}: {ack}");
        let chunk = fast.recv().await?;
        received_fast += seq_nums(&chunk["values"][0]).len();
    }
    assert_eq!(received_fast, 400, "the reading puller got every event");
    assert!(slowest_ack < Duration::from_secs(2), "pushes stalled: slowest ack {slowest_ack:?}");
    let grown_mib = rss_kib().saturating_sub(rss_before) / 1024;
    assert!(grown_mib < 200, "memory grew by {grown_mib} MiB");
    // The slow client finds a close with a clear reason after what the kernel buffered.
    let (code, reason) = slow.recv_close_reason().await?;
    assert_eq!(code, Some(1013), "the slow consumer is closed with 1013 ({reason})");
    assert!(reason.contains("not reading"), "close reason: {reason}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_outside_the_allowlist_are_refused() -> Result<()> {
    let server =
        TestServer::builder().config(|c| c.allowed_origins = vec!["https://app.example".into()]).start().await?;
    let url = server.sync_url(&unique_store("origin"), TOKEN);
    assert_eq!(
        refused_status(WsClient::connect_with_headers(&url, &[("Origin", "https://evil.example")]).await),
        Some(403)
    );
    WsClient::connect_with_headers(&url, &[("Origin", "https://app.example")]).await?;
    WsClient::connect(&url).await?; // non-browser clients send no Origin
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_injection_attempts_are_harmless() -> Result<()> {
    let server = TestServer::start().await?;
    // Store ids are any string: these are ordinary stores, each with its own log.
    let evil_ids = [
        "x\"; DROP TABLE context_7; --",
        "a' OR '1'='1",
        "eventlog_7_x\"--",
        "s;DELETE FROM context_7",
        "../../etc/passwd",
    ];
    for (i, evil) in evil_ids.iter().enumerate() {
        let mut c = server.connect(evil).await?;
        let (_, ack) = c.push(evil, chain(1, i as i64 + 1), None).await?;
        assert!(is_push_ack(&ack), "{evil}: {ack}");
    }
    for (i, evil) in evil_ids.iter().enumerate() {
        let mut c = server.connect(evil).await?;
        assert_eq!(c.pull_seq_nums(evil).await?.0, (1..=i as i64 + 1).collect::<Vec<_>>(), "{evil}");
    }
    let store = unique_store("inject");
    let mut c = server.connect(&store).await?;
    let nasty = json!({
        "name": "x'); DROP TABLE context_7; --",
        "args": { "sql": "\"; DELETE FROM eventlog_7_x; --", "nul": "a\u{0}b" },
        "seqNum": 1, "parentSeqNum": 0, "clientId": "c'--", "sessionId": "s\"--"
    });
    let (_, ack) = c.push(&store, vec![nasty.clone()], None).await?;
    assert!(is_push_ack(&ack), "{ack}");
    let responses = c.pull_all(&store, None).await?;
    assert_eq!(responses[0]["batch"][0]["eventEncoded"], nasty);
    // Other stores still work, so context_7 is intact.
    let other = unique_store("after");
    let mut o = server.connect(&other).await?;
    let (_, ok) = o.push(&other, chain(1, 1), None).await?;
    assert!(is_push_ack(&ok));
    Ok(())
}
