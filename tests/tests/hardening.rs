//! The open internet: hostile and careless clients against the native server. Each test
//! reproduces one way a client could hurt the server or others, and checks the bound.

use anyhow::Result;
use livestore_sync_tests::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn get(path: &str, headers: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n")
}

/// RFC 7235: the auth scheme's name is case-insensitive, for the admin API and for tokens
/// sent in `Authorization` by simple-protocol clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive() -> Result<()> {
    let server = TestServer::builder().config(|c| c.admin_secret = Some("admin-s3cret".into())).start().await?;
    let store = unique_store("bearer");
    let mut c = server.connect(&store).await?;
    let (_, ack) = c.push(&store, chain(1, 1), None).await?;
    assert!(is_push_ack(&ack), "{ack}");
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let req = get(&format!("/admin/stores/{store}"), &format!("Authorization: {scheme} admin-s3cret\r\n"));
        let (status, raw) = http_request(server.addr, &req).await?;
        assert_eq!(status, 200, "{scheme}: {raw}");
    }
    let url = format!("{}/websocket?storeId={}", server.ws_base(), urlencode(&store));
    let mut simple = WsClient::connect_with_headers(&url, &[("authorization", &format!("bEaReR {TOKEN}"))]).await?;
    simple.send(&json!({ "type": "pull" })).await?;
    let events = simple.recv().await?;
    assert_eq!(events["type"], "events", "the header's token authenticated the socket: {events}");
    Ok(())
}

/// RFC 6455 §4.4: an upgrade for another protocol version gets 426 naming version 13.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_versions_other_than_13_get_426() -> Result<()> {
    let server = TestServer::builder().token(None).start().await?;
    let upgrade = |version: &str| {
        format!(
            "GET /?storeId=v&transport=ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n{version}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
    };
    for version in ["Sec-WebSocket-Version: 8\r\n", "Sec-WebSocket-Version: 14\r\n", ""] {
        let (status, raw) = http_request(server.addr, &upgrade(version)).await?;
        assert_eq!(status, 426, "{version:?}: {raw}");
        assert!(raw.to_ascii_lowercase().contains("sec-websocket-version: 13"), "{raw}");
    }
    WsClient::connect(&format!("{}/?storeId=v&transport=ws", server.ws_base())).await?;
    Ok(())
}

/// The HTTP transport takes POST; anything else is 405 (as on Cloudflare), not a component defect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_transport_refuses_other_methods() -> Result<()> {
    let server = TestServer::builder().token(None).start().await?;
    let (status, raw) = http_request(server.addr, &get("/?storeId=m&transport=http", "")).await?;
    assert_eq!(status, 405, "{raw}");
    assert!(raw.contains("the HTTP transport takes POST"), "{raw}");
    Ok(())
}

/// An HTTP-transport body that trickles in is cut off at the send timeout (408) instead of
/// holding its socket and buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_never_finishes_gets_408() -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::builder().token(None).config(|c| c.send_timeout = Duration::from_secs(1)).start().await?;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await?;
    tcp.write_all(b"POST /?storeId=m&transport=http HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"_tag\"")
        .await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await??;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    Ok(())
}

/// With `--cors` and an origin allowlist, a response names the request's origin (browsers
/// accept one, not `*` next to a list) and varies by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_with_an_allowlist_echoes_the_origin_and_varies_by_it() -> Result<()> {
    let server = TestServer::builder()
        .token(None)
        .config(|c| {
            c.cors = true;
            c.allowed_origins = vec!["https://app.example".into(), "https://admin.example".into()];
        })
        .start()
        .await?;
    for origin in ["https://app.example", "https://admin.example"] {
        let (status, raw) = http_request(server.addr, &get("/", &format!("Origin: {origin}\r\n"))).await?;
        assert_eq!(status, 200, "{raw}");
        let lower = raw.to_ascii_lowercase();
        assert!(lower.contains(&format!("access-control-allow-origin: {origin}")), "{raw}");
        assert!(lower.contains("vary: origin"), "{raw}");
        assert!(!lower.contains("access-control-allow-origin: *"), "{raw}");
        let preflight = format!(
            "OPTIONS /?storeId=s&transport=http HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
        );
        let (status, raw) = http_request(server.addr, &preflight).await?;
        assert_eq!(status, 204, "{raw}");
        assert!(raw.to_ascii_lowercase().contains(&format!("access-control-allow-origin: {origin}")), "{raw}");
    }
    let (status, raw) = http_request(server.addr, &get("/", "Origin: https://evil.example\r\n")).await?;
    assert_eq!(status, 403, "{raw}");
    assert!(!raw.to_ascii_lowercase().contains("access-control-allow-origin"), "{raw}");
    Ok(())
}

fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// `/health` makes a real storage write, but a flood of health checks shares one probe a
/// second instead of writing once per request on the shard that serves pushes. (The only
/// test in this process that asks for `/health`: the probe counter is process-wide.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_health_checks_costs_one_storage_write_a_second() -> Result<()> {
    let server = TestServer::builder().token(None).start().await?;
    let probes = || async {
        let (_, raw) = http_request(server.addr, &get("/metrics", "")).await?;
        anyhow::Ok(counter(&raw, "livestore_sync_health_storage_probes_total"))
    };
    let before = probes().await?;
    let started = std::time::Instant::now();
    let request = get("/health", "");
    let checks = (0..200).map(|_| http_request(server.addr, &request));
    for answer in futures_util::future::join_all(checks).await {
        let (status, raw) = answer?;
        assert_eq!(status, 200, "{raw}");
    }
    let seconds = started.elapsed().as_secs_f64();
    let made = probes().await? - before;
    assert!(made >= 1.0, "health checks still write to storage: {made}");
    assert!(made <= seconds.ceil() + 1.0, "{made} storage probes for 200 checks in {seconds:.2} s");
    Ok(())
}

/// Silent sockets and byte-a-second request heads are closed after the header timeout, at
/// most `max_pending_connections` of them wait at once (a new connection closes the oldest),
/// and meanwhile a real client connects and `/health` answers promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_connections_are_closed_and_real_clients_still_get_in() -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::builder()
        .token(None)
        .config(|c| {
            c.header_timeout = Duration::from_secs(1);
            c.max_pending_connections = 64;
        })
        .start()
        .await?;
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(tokio::net::TcpStream::connect(server.addr).await?);
    }
    let mut slow = Vec::new();
    for _ in 0..10 {
        slow.push(tokio::net::TcpStream::connect(server.addr).await?);
    }
    let dripping = tokio::spawn(async move {
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\n".iter().cycle().take(40) {
            for s in slow.iter_mut() {
                let _ = s.write_all(&[*byte]).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slow
    });
    let started = Instant::now();
    let mut c = WsClient::connect(&format!("{}/?storeId=real&transport=ws", server.ws_base())).await?;
    c.send_text(r#"{"_tag":"Ping"}"#).await?;
    assert_eq!(c.recv().await?, json!({ "_tag": "Pong" }));
    let connect = started.elapsed();
    let started = Instant::now();
    let (status, _) = http_request(server.addr, &get("/health", "")).await?;
    let health = started.elapsed();
    assert_eq!(status, 200);
    assert!(
        connect < Duration::from_secs(2) && health < Duration::from_secs(2),
        "connect {connect:?}, health {health:?}"
    );
    // Every silent socket and every slow one is closed by the server within the timeout.
    let closed = |mut s: tokio::net::TcpStream| async move {
        let mut buf = [0u8; 512];
        loop {
            match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    };
    let results = futures_util::future::join_all(silent.into_iter().map(closed)).await;
    assert!(results.iter().all(|c| *c), "{} silent sockets still open", results.iter().filter(|c| !**c).count());
    let slow = dripping.await?;
    let results = futures_util::future::join_all(slow.into_iter().map(closed)).await;
    assert!(results.iter().all(|c| *c), "a slow request head kept its socket");
    Ok(())
}

/// `--max-connections-per-client`: the peer's address counts, and `X-Forwarded-For` only when
/// the peer is a `--trusted-proxy`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_client_address_are_capped() -> Result<()> {
    let connect = |server: &TestServer, forwarded: Option<&'static str>| {
        let url = format!("{}/?storeId=cap&transport=ws", server.ws_base());
        async move {
            let headers: Vec<(&str, &str)> = forwarded.map(|f| vec![("x-forwarded-for", f)]).unwrap_or_default();
            WsClient::connect_with_headers(&url, &headers).await
        }
    };
    let status = |r: Result<WsClient>| match r {
        Ok(_) => 101,
        Err(e) => match e.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
            Some(tokio_tungstenite::tungstenite::Error::Http(res)) => res.status().as_u16(),
            _ => 0,
        },
    };
    let direct = TestServer::builder().token(None).config(|c| c.max_connections_per_client = 2).start().await?;
    let _a = connect(&direct, None).await?;
    let _b = connect(&direct, Some("10.0.0.1")).await?;
    assert_eq!(status(connect(&direct, Some("10.0.0.2")).await), 429, "a forged X-Forwarded-For is not believed");
    let proxied = TestServer::builder()
        .token(None)
        .config(|c| {
            c.max_connections_per_client = 2;
            c.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
        })
        .start()
        .await?;
    let _c = connect(&proxied, Some("10.0.0.1")).await?;
    let _d = connect(&proxied, Some("10.0.0.1")).await?;
    assert_eq!(status(connect(&proxied, Some("10.0.0.1")).await), 429);
    assert_eq!(status(connect(&proxied, Some("6.6.6.6, 10.0.0.2")).await), 101, "another client behind the proxy");
    Ok(())
}

/// A simple-protocol socket without a token creates nothing until it authenticates, has a
/// deadline to do so, and such sockets have their own small cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_simple_sockets_create_nothing() -> Result<()> {
    let server = TestServer::builder()
        .config(|c| {
            c.admin_secret = Some("admin-s3cret".into());
            c.max_unauthenticated = 20;
            c.auth_timeout = Duration::from_secs(1);
        })
        .start()
        .await?;
    let url = |store: &str| format!("{}/websocket?storeId={store}", server.ws_base());
    let mut waiting = Vec::new();
    for i in 0..20 {
        waiting.push(WsClient::connect(&url(&format!("ghost-{i}"))).await?);
    }
    match WsClient::connect(&url("ghost-20")).await {
        Err(e) => assert!(format!("{e:#}").contains("503"), "{e:#}"),
        Ok(_) => anyhow::bail!("a 21st unauthenticated socket must be refused"),
    }
    for i in [0, 7, 19] {
        let req = get(&format!("/admin/stores/ghost-{i}"), "Authorization: Bearer admin-s3cret\r\n");
        let (status, raw) = http_request(server.addr, &req).await?;
        assert_eq!(status, 404, "no store exists for an unauthenticated socket: {raw}");
    }
    // Before the deadline a socket may still authenticate; the others are closed with 1008.
    let mut late = waiting.remove(0);
    late.send(&json!({ "type": "push", "events": [] })).await?;
    assert_eq!(late.recv().await?["code"], "unauthorized");
    late.send(&json!({ "type": "auth", "token": TOKEN })).await?;
    assert_eq!(late.recv().await?, json!({ "type": "auth_ok" }));
    late.send(&json!({ "type": "push", "events": [{ "id": "e1", "type": "note" }] })).await?;
    assert_eq!(late.recv().await?["seqNums"], json!([1]));
    for mut w in waiting.into_iter().take(5) {
        let (code, reason) = w.recv_close_reason().await?;
        assert_eq!(code, Some(1008), "{reason}");
        assert!(reason.contains("authenticate within 1 s"), "{reason}");
    }
    // Places are free again.
    WsClient::connect(&url("ghost-again")).await?;
    Ok(())
}

/// 20,000 pull requests on one connection: past the per-connection cap each gets
/// `TooManyPullsError`, and a client of another store on the same shard still gets its Pong
/// quickly (the flooding socket is not read faster than its store handles its frames).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_flood_on_one_connection_does_not_stall_another_store() -> Result<()> {
    let server = TestServer::builder().token(None).config(|c| c.shards = 1).start().await?;
    let mut flood = WsClient::connect(&format!("{}/?storeId=flood&transport=ws", server.ws_base())).await?;
    let mut other = WsClient::connect(&format!("{}/?storeId=bystander&transport=ws", server.ws_base())).await?;
    let sender = tokio::spawn(async move {
        for i in 0..20_000 {
            flood.send(&pull_request(&format!("p{i}"), "flood", None, true)).await?;
        }
        anyhow::Ok(flood)
    });
    let mut worst = Duration::ZERO;
    while !sender.is_finished() {
        let started = Instant::now();
        other.send_text(r#"{"_tag":"Ping"}"#).await?;
        assert_eq!(other.recv().await?, json!({ "_tag": "Pong" }));
        worst = worst.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut flood = sender.await??;
    assert!(worst < Duration::from_secs(1), "a Pong took {worst:?} during the flood");
    let mut refused = 0;
    let mut chunks = 0;
    while let Some(frame) = flood.recv_within(Duration::from_secs(2)).await? {
        match failure_error(&frame) {
            Some(e) if e["cause"]["name"] == "TooManyPullsError" => refused += 1,
            _ if frame["_tag"] == "Chunk" => chunks += 1,
            _ => {}
        }
        if refused + chunks == 20_000 {
            break;
        }
    }
    assert_eq!((chunks, refused), (16, 20_000 - 16));
    eprintln!("worst Pong delay for another store during a 20,000-pull flood: {worst:?}");
    Ok(())
}

/// Many readers that stop reading: the server's total queue budget cuts off the biggest queues
/// first, and a reader that keeps up gets everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_readers_are_cut_off_biggest_first_under_the_server_budget() -> Result<()> {
    let server = TestServer::builder().token(None).config(|c| c.max_total_queue_bytes = 4 << 20).start().await?;
    let url = format!("{}/?storeId=paused&transport=ws", server.ws_base());
    let mut paused = Vec::new();
    for i in 0..4 {
        let mut c = WsClient::connect(&url).await?;
        c.send(&pull_request(&format!("live{i}"), "paused", None, true)).await?;
        c.recv().await?;
        paused.push(c);
    }
    let mut reader = WsClient::connect(&url).await?;
    reader.send(&pull_request("live", "paused", None, true)).await?;
    reader.recv().await?;
    let mut pusher = WsClient::connect(&url).await?;
    let args = "x".repeat(8_000);
    let reading = tokio::spawn(async move {
        let mut seen = 0;
        while seen < 3_000 {
            let frame = reader.recv().await?;
            seen += frame["values"][0]["batch"].as_array().map_or(0, Vec::len);
        }
        anyhow::Ok(seen)
    });
    for start in (1..=3_000).step_by(100) {
        let batch: Vec<_> = (start..start + 100)
            .map(|s| json!({ "name": "e", "args": args, "seqNum": s, "parentSeqNum": s - 1, "clientId": "c", "sessionId": "s" }))
            .collect();
        let (_, ack) = pusher.push("paused", batch, None).await?;
        assert!(is_push_ack(&ack), "{ack}");
    }
    assert_eq!(reading.await??, 3_000, "the reader that keeps up gets every event");
    let mut cut = 0;
    for mut c in paused {
        let (code, reason) = c.recv_close_reason().await?;
        if code == Some(1013) {
            assert!(reason.contains("held the most") || reason.contains("not reading"), "{reason}");
            cut += 1;
        }
    }
    assert!(cut >= 3, "24 MB for each of 4 paused readers under a 4 MiB budget: {cut} cut off");
    Ok(())
}
