//! The open internet: hostile and careless clients against the native server. Each test
//! reproduces one way a client could hurt the server or others, and checks the bound.

use anyhow::Result;
use livestore_sync_tests::*;
use serde_json::json;

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
