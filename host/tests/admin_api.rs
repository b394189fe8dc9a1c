//! The admin API behind `--admin-secret`: every endpoint's refusals without the secret, the
//! store list's paging, sorting and filtering, event pages, connections, export, the live tail,
//! a reset that closes the store's sockets, and the console's sign-in (session cookie, CSRF).

use anyhow::{ensure, Context, Result};
use livestore_sync_tests::{chain, http_request, is_push_ack, unique_store, TestServer, WsClient};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "admin-s3cret";

async fn server() -> Result<TestServer> {
    TestServer::builder().token(None).config(|c| c.admin_secret = Some(SECRET.into())).start().await
}

/// A response: status, head (status line and headers) and body (de-chunked).
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON ({}): {}", self.status, self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

async fn call(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Result<Answer> {
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let (status, raw) = http_request(addr, &req).await?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Ok(Answer { status, head: head.to_string(), body: if chunked { dechunk(body) } else { body.to_string() } })
}

const BEARER: (&str, &str) = ("Authorization", "Bearer admin-s3cret");

async fn get(addr: SocketAddr, path: &str) -> Result<Answer> {
    call(addr, "GET", path, &[BEARER], "").await
}

/// `n` events pushed to a fresh store, in batches of at most 100.
async fn store_with(server: &TestServer, prefix: &str, n: i64) -> Result<String> {
    let store = unique_store(prefix);
    let mut c = server.connect(&store).await?;
    let mut from = 1;
    while from <= n {
        let to = (from + 99).min(n);
        let (_, ok) = c.push(&store, chain(from, to), None).await?;
        ensure!(is_push_ack(&ok), "{ok}");
        from = to + 1;
    }
    Ok(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_the_admin_api_and_console_do_not_exist() -> Result<()> {
    let server = TestServer::builder().token(None).start().await?;
    for path in ["/admin/", "/admin", "/admin/overview", "/admin/stores", "/admin/stores/x/events", "/admin/console.js"]
    {
        let a = get(server.addr, path).await?;
        ensure!(a.status == 404, "{path}: {} {}", a.status, a.body);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_refuses_a_missing_or_wrong_secret() -> Result<()> {
    let server = server().await?;
    let store = store_with(&server, "adm-auth", 1).await?;
    let endpoints = [
        ("GET", "/admin/overview".to_string()),
        ("GET", "/admin/stores".to_string()),
        ("GET", format!("/admin/stores/{store}")),
        ("GET", format!("/admin/stores/{store}/events")),
        ("GET", format!("/admin/stores/{store}/connections")),
        ("GET", format!("/admin/stores/{store}/export")),
        ("GET", format!("/admin/stores/{store}/tail")),
        ("POST", format!("/admin/stores/{store}/reset")),
        ("POST", format!("/admin/stores/{store}/import")),
    ];
    for (method, path) in &endpoints {
        let none = call(server.addr, method, path, &[], "").await?;
        ensure!(none.status == 401, "{method} {path} without a secret: {}", none.status);
        let wrong = call(server.addr, method, path, &[("Authorization", "Bearer nope")], "").await?;
        ensure!(wrong.status == 401, "{method} {path} with a wrong secret: {}", wrong.status);
        let cookie = call(server.addr, method, path, &[("Cookie", "livestore_sync_admin=forged")], "").await?;
        ensure!(cookie.status == 401, "{method} {path} with a forged session: {}", cookie.status);
    }
    let info = get(server.addr, &format!("/admin/stores/{store}")).await?;
    ensure!(info.status == 200 && info.json()?["head"] == 1, "nothing was reset: {}", info.body);
    // The console page itself loads without a session (it shows the sign-in form).
    let page = call(server.addr, "GET", "/admin/", &[], "").await?;
    ensure!(page.status == 200 && page.body.contains("Admin secret"), "{}", page.status);
    let csp = page.header("content-security-policy").context("a CSP")?;
    ensure!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_are_listed_paged_sorted_and_filtered() -> Result<()> {
    let server = server().await?;
    let prefix = unique_store("adm-list");
    let mut ids = Vec::new();
    for (i, n) in [3, 1, 5, 2].into_iter().enumerate() {
        ids.push(store_with(&server, &format!("{prefix}-{i}"), n).await?);
    }
    let other = store_with(&server, "adm-other", 9).await?;

    let by_events = get(server.addr, &format!("/admin/stores?prefix={prefix}&sort=events")).await?.json()?;
    ensure!(by_events["total"] == 4, "the prefix leaves out {other}: {by_events}");
    let counts: Vec<i64> =
        by_events["stores"].as_array().context("stores")?.iter().filter_map(|s| s["eventCount"].as_i64()).collect();
    ensure!(counts == vec![5, 3, 2, 1], "events, most first: {counts:?}");

    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = get(server.addr, &format!("/admin/stores?prefix={prefix}&sort=id&limit=3&offset={offset}"))
            .await?
            .json()?;
        let stores = page["stores"].as_array().context("stores")?;
        ensure!(stores.len() <= 3, "{page}");
        seen.extend(stores.iter().filter_map(|s| s["storeId"].as_str().map(str::to_string)));
        match page["next"].as_u64() {
            Some(next) => offset = next as usize,
            None => break,
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    ensure!(seen == sorted, "pages in id order, each store once: {seen:?}");

    let past = get(server.addr, &format!("/admin/stores?prefix={prefix}&offset=100")).await?.json()?;
    ensure!(past["stores"] == json!([]) && past["next"].is_null() && past["total"] == 4, "{past}");
    let newest = get(server.addr, &format!("/admin/stores?prefix={prefix}&limit=1")).await?.json()?;
    ensure!(newest["stores"][0]["storeId"] == ids[3].as_str(), "last sync, newest first: {newest}");
    for bad in ["limit=0", "limit=501", "offset=-1", "sort=size", "order=up"] {
        let a = get(server.addr, &format!("/admin/stores?{bad}")).await?;
        ensure!(a.status == 400, "{bad}: {} {}", a.status, a.body);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_come_in_pages_with_args_as_json() -> Result<()> {
    let server = server().await?;
    let store = store_with(&server, "adm-events", 5).await?;
    let first = get(server.addr, &format!("/admin/stores/{store}/events?limit=2")).await?.json()?;
    let seqs = |v: &Value| -> Vec<i64> {
        v["events"].as_array().map(|a| a.iter().filter_map(|e| e["seqNum"].as_i64()).collect()).unwrap_or_default()
    };
    ensure!(seqs(&first) == vec![1, 2] && first["next"] == 2 && first["head"] == 5, "{first}");
    ensure!(first["events"][0]["args"]["id"] == "todo-1", "args are JSON, not a string: {first}");
    let last = get(server.addr, &format!("/admin/stores/{store}/events?after=4&limit=2")).await?.json()?;
    ensure!(seqs(&last) == vec![5] && last["next"].is_null(), "{last}");
    let beyond = get(server.addr, &format!("/admin/stores/{store}/events?after=5")).await?.json()?;
    ensure!(seqs(&beyond).is_empty() && beyond["next"].is_null(), "{beyond}");
    for bad in ["after=-1", "after=x", "limit=0", "limit=1001"] {
        let a = get(server.addr, &format!("/admin/stores/{store}/events?{bad}")).await?;
        ensure!(a.status == 400, "{bad}: {}", a.status);
    }
    let missing = get(server.addr, "/admin/stores/no-such-store/events").await?;
    ensure!(missing.status == 404, "{}", missing.status);
    let bad_id = get(server.addr, "/admin/stores/%FF/events").await?;
    ensure!(bad_id.status == 400, "{}", bad_id.status);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_show_who_is_connected() -> Result<()> {
    let server = server().await?;
    let store = store_with(&server, "adm-conns", 1).await?;
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let mut live = server.connect(&store).await?;
    let (_, ok) = live.push(&store, chain(2, 2), None).await?;
    ensure!(is_push_ack(&ok), "{ok}");
    let id = live.id();
    live.send(&livestore_sync_tests::pull_request(&id, &store, None, true)).await?;
    let chunk = live.recv_for(&id).await?;
    ensure!(chunk["_tag"] == "Chunk", "{chunk}");
    let simple = WsClient::connect(&format!("{}/websocket?storeId={store}&clientId=alice", server.ws_base())).await?;
    let list = |v: &Value| v["connections"].as_array().cloned().unwrap_or_default();
    let mut conns = Vec::new();
    for _ in 0..50 {
        conns = list(&get(server.addr, &format!("/admin/stores/{store}/connections")).await?.json()?);
        if conns.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ensure!(conns.len() == 2, "{conns:?}");
    let alice = conns.iter().find(|c| c["clientId"] == "alice").context("the simple client")?;
    ensure!(alice["protocol"] == "simple" && alice["transport"] == "ws" && alice["peer"] == "127.0.0.1", "{alice}");
    ensure!(alice["openPulls"] == 0, "{alice}");
    let livestore = conns.iter().find(|c| c["protocol"] == "livestore").context("the LiveStore client")?;
    ensure!(livestore["openPulls"] == 1, "the component counts the live pull: {livestore}");
    ensure!(conns.iter().all(|c| c["connectedAt"].as_u64().is_some_and(|t| t + 1000 >= started)), "{conns:?}");
    drop(simple);
    let mut left = conns.len();
    for _ in 0..100 {
        left = list(&get(server.addr, &format!("/admin/stores/{store}/connections")).await?.json()?).len();
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ensure!(left == 1, "a closed socket leaves the list ({left} left)");
    drop(live);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_the_header_and_every_event_in_pages() -> Result<()> {
    let server = server().await?;
    let store = store_with(&server, "adm-export", 2_345).await?;
    let a = get(server.addr, &format!("/admin/stores/{store}/export")).await?;
    ensure!(a.status == 200, "{}", a.status);
    ensure!(a.header("content-disposition").is_some_and(|d| d.contains(".jsonl")), "{}", a.head);
    let lines: Vec<&str> = a.body.lines().collect();
    let header: Value = serde_json::from_str(lines[0])?;
    ensure!(
        header["livestoreSyncExport"] == 1 && header["head"] == 2_345 && header["storeId"] == store.as_str(),
        "{header}"
    );
    let seqs: Vec<i64> =
        lines[1..].iter().filter_map(|l| serde_json::from_str::<Value>(l).ok()?["seqNum"].as_i64()).collect();
    ensure!(seqs == (1..=2_345).collect::<Vec<_>>(), "every event once, in order ({} lines)", seqs.len());
    Ok(())
}

/// Read a streamed response until `until` appears (or fail after 10 s).
async fn read_until(tcp: &mut tokio::net::TcpStream, seen: &mut String, until: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 8192];
    while !seen.contains(until) {
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut buf))
            .await
            .with_context(|| format!("no {until:?} in {seen}"))??;
        ensure!(n > 0, "the stream ended before {until:?}: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_streams_each_batch_and_a_reset_closes_the_stores_sockets() -> Result<()> {
    let server = server().await?;
    let store = store_with(&server, "adm-tail", 2).await?;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await?;
    tcp.write_all(
        format!("GET /admin/stores/{store}/tail HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRET}\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut seen = String::new();
    read_until(&mut tcp, &mut seen, "event: ready").await?;
    ensure!(seen.contains("text/event-stream") && seen.contains("\"head\":2"), "{seen}");

    let mut client = server.connect(&store).await?;
    let (_, ok) = client.push(&store, chain(3, 4), None).await?;
    ensure!(is_push_ack(&ok), "{ok}");
    read_until(&mut tcp, &mut seen, "event: events").await?;
    read_until(&mut tcp, &mut seen, "\"seqNum\":4").await?;
    ensure!(seen.contains("\"seqNum\":3") && seen.contains("\"id\":\"todo-4\""), "{seen}");

    let reset = call(server.addr, "POST", &format!("/admin/stores/{store}/reset"), &[BEARER], "").await?;
    ensure!(reset.status == 200 && reset.json()?["removedEvents"] == 4, "{}", reset.body);
    read_until(&mut tcp, &mut seen, "event: reset").await?;
    ensure!(client.recv_close().await? == Some(1012), "the store's socket is closed for the reset");
    let info = get(server.addr, &format!("/admin/stores/{store}")).await?.json()?;
    ensure!(info["head"] == 0 && info["backendId"] == reset.json()?["backendId"], "{info}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_with_a_strict_cookie_and_changes_need_the_csrf_token() -> Result<()> {
    let server = server().await?;
    let store = store_with(&server, "adm-session", 3).await?;
    let wrong = call(server.addr, "POST", "/admin/session", &[], &json!({ "secret": "nope" }).to_string()).await?;
    ensure!(wrong.status == 401 && wrong.header("set-cookie").is_none(), "{}", wrong.status);
    let signed = call(server.addr, "POST", "/admin/session", &[], &json!({ "secret": SECRET }).to_string()).await?;
    ensure!(signed.status == 200, "{}", signed.body);
    let set_cookie = signed.header("set-cookie").context("a session cookie")?.to_string();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/admin"] {
        ensure!(set_cookie.contains(attribute), "{attribute} missing: {set_cookie}");
    }
    let cookie = set_cookie.split(';').next().context("cookie")?.to_string();
    let csrf = signed.json()?["csrf"].as_str().context("csrf")?.to_string();
    let session = [("Cookie", cookie.as_str())];

    let list = call(server.addr, "GET", "/admin/stores", &session, "").await?;
    ensure!(list.status == 200, "reads need only the session: {}", list.status);
    let again = call(server.addr, "GET", "/admin/session", &session, "").await?.json()?;
    ensure!(again["csrf"] == csrf.as_str(), "the page learns its token after a reload: {again}");
    let reset = format!("/admin/stores/{store}/reset");
    let no_token = call(server.addr, "POST", &reset, &session, "").await?;
    ensure!(no_token.status == 403, "a change without the CSRF token: {}", no_token.status);
    let wrong_token = call(server.addr, "POST", &reset, &[session[0], ("X-CSRF-Token", "guess")], "").await?;
    ensure!(wrong_token.status == 403, "{}", wrong_token.status);
    let info = get(server.addr, &format!("/admin/stores/{store}")).await?.json()?;
    ensure!(info["head"] == 3, "nothing was reset yet: {info}");
    let ok = call(server.addr, "POST", &reset, &[session[0], ("X-CSRF-Token", csrf.as_str())], "").await?;
    ensure!(ok.status == 200, "{}", ok.body);

    let out = call(server.addr, "DELETE", "/admin/session", &[session[0], ("X-CSRF-Token", csrf.as_str())], "").await?;
    ensure!(out.status == 204 && out.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0")), "{}", out.head);
    let after = call(server.addr, "GET", "/admin/stores", &session, "").await?;
    ensure!(after.status == 401, "a signed-out session is refused: {}", after.status);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_reports_version_component_and_counters() -> Result<()> {
    let server = server().await?;
    store_with(&server, "adm-overview", 2).await?;
    let o = get(server.addr, "/admin/overview").await?.json()?;
    ensure!(o["version"] == env!("CARGO_PKG_VERSION"), "{o}");
    ensure!(o["component"] == livestore_sync::runtime::GUEST_SHA256.trim(), "{o}");
    ensure!(o["pushesAccepted"].as_f64().is_some_and(|n| n >= 1.0), "{o}");
    ensure!(o["eventsPushed"].as_f64().is_some_and(|n| n >= 2.0), "{o}");
    ensure!(o["activity"].is_array() && o["sampleSeconds"] == 5, "{o}");
    Ok(())
}

/// The export is what `livestore-sync export` writes, byte for byte: args keep integers past
/// 2^64 and number spellings, and the file imports into another data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_matches_the_cli_byte_for_byte_and_imports() -> Result<()> {
    let bin = env!("CARGO_BIN_EXE_livestore-sync");
    let tmp = tempfile::tempdir()?;
    let (data, copy) = (tmp.path().join("data"), tmp.path().join("copy"));
    let file = tmp.path().join("in.jsonl");
    let events = [
        r#"{"seqNum":1,"parentSeqNum":0,"name":"v1.Big","args":{"n":123456789012345678901234567890,"f":1.10,"s":"Zoë"},"createdAt":"2026-11-28T12:00:00.000Z","clientId":"c","sessionId":"s"}"#,
        r#"{"seqNum":2,"parentSeqNum":1,"name":"v1.Null","args":null,"createdAt":"2026-11-28T12:00:01.000Z","clientId":"c","sessionId":"s"}"#,
    ];
    std::fs::write(&file, events.join("\n") + "\n")?;
    let run = |dir: &std::path::Path, args: &[&str]| -> Result<std::process::Output> {
        Ok(livestore_sync_tests::binary::command(bin).arg("--data-dir").arg(dir).args(args).output()?)
    };
    let imported = run(&data, &["import", "big", &file.to_string_lossy()])?;
    ensure!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let cli_export = run(&data, &["export", "big"])?;
    ensure!(cli_export.status.success(), "{}", String::from_utf8_lossy(&cli_export.stderr));

    let server = TestServer::builder().data_dir(&data).config(|c| c.admin_secret = Some(SECRET.into())).start().await?;
    let a = get(server.addr, "/admin/stores/big/export").await?;
    ensure!(a.status == 200, "{}", a.status);
    ensure!(
        a.body.as_bytes() == cli_export.stdout,
        "admin export:\n{}\nCLI export:\n{}",
        a.body,
        String::from_utf8_lossy(&cli_export.stdout)
    );
    ensure!(a.body.contains("123456789012345678901234567890") && a.body.contains("1.10"), "{}", a.body);
    drop(server);

    let exported = tmp.path().join("exported.jsonl");
    std::fs::write(&exported, &a.body)?;
    let again = run(&copy, &["import", "big", &exported.to_string_lossy()])?;
    ensure!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let round_trip = run(&copy, &["export", "big"])?;
    ensure!(round_trip.stdout == cli_export.stdout, "the admin export imports to the same store");
    Ok(())
}

/// `POST /admin/stores/{id}/import`: what an export wrote goes back in, checked as the CLI
/// checks it; a refused file leaves the store as it was, and an import closes the store's sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_are_checked_like_the_cli_and_close_the_stores_sockets() -> Result<()> {
    let server = server().await?;
    let source = store_with(&server, "adm-import-src", 250).await?;
    let export = get(server.addr, &format!("/admin/stores/{source}/export")).await?.body;
    let target = unique_store("adm-import-dst");
    let path = format!("/admin/stores/{target}/import");

    let ok = call(server.addr, "POST", &path, &[BEARER], &export).await?;
    ensure!(ok.status == 200, "{}", ok.body);
    let ok = ok.json()?;
    ensure!(ok["importedEvents"] == 250 && ok["keptBackendId"] == true, "{ok}");
    let page = get(server.addr, &format!("/admin/stores/{target}/events?after=249")).await?.json()?;
    ensure!(page["events"][0]["seqNum"] == 250 && page["events"][0]["args"]["id"] == "todo-250", "{page}");

    let again = call(server.addr, "POST", &path, &[BEARER], &export).await?;
    ensure!(again.status == 400 && again.body.contains("already has 250 events"), "{} {}", again.status, again.body);

    // A download cut off after event 249: its header promises 250, so nothing is imported.
    let cut: Vec<&str> = export.lines().take(250).collect();
    let truncated =
        call(server.addr, "POST", &format!("{path}?replace=true&backendId=new"), &[BEARER], &cut.join("\n")).await?;
    ensure!(
        truncated.status == 400 && truncated.body.contains("truncated export"),
        "{} {}",
        truncated.status,
        truncated.body
    );
    let empty = call(server.addr, "POST", &format!("{path}?replace=true"), &[BEARER], "").await?;
    ensure!(empty.status == 400 && empty.body.contains("holds no events"), "{} {}", empty.status, empty.body);
    let info = get(server.addr, &format!("/admin/stores/{target}")).await?.json()?;
    ensure!(info["head"] == 250 && info["backendId"] == ok["backendId"], "untouched by refused imports: {info}");

    // A gap: refused, nothing changes.
    let lines: Vec<&str> = export.lines().collect();
    let gap = [lines[0], lines[1], lines[3]].join("\n");
    let mut client = server.connect(&target).await?;
    let refused = call(server.addr, "POST", &format!("{path}?replace=true"), &[BEARER], &gap).await?;
    ensure!(refused.status == 400 && refused.body.contains("does not continue the chain"), "{}", refused.body);
    ensure!(get(server.addr, &format!("/admin/stores/{target}")).await?.json()?["head"] == 250, "untouched");
    let (_, ok) = client.push(&target, chain(251, 251), None).await?;
    ensure!(is_push_ack(&ok), "the store keeps serving after a refused import: {ok}");

    // replace + a new backend id: the store's sockets close so clients re-sync.
    let replaced = call(server.addr, "POST", &format!("{path}?replace=true&backendId=new"), &[BEARER], &export).await?;
    ensure!(replaced.status == 200 && replaced.json()?["keptBackendId"] == false, "{}", replaced.body);
    ensure!(client.recv_close().await? == Some(1012), "the store's socket is closed for the import");
    ensure!(get(server.addr, &format!("/admin/stores/{target}")).await?.json()?["head"] == 250, "replaced");

    // A refused import into a new store leaves no store behind.
    let ghost = unique_store("adm-import-ghost");
    let bad = call(server.addr, "POST", &format!("/admin/stores/{ghost}/import"), &[BEARER], "{\"not\":\"an event\"}")
        .await?;
    ensure!(bad.status == 400 && bad.body.contains("line 1"), "{} {}", bad.status, bad.body);
    ensure!(get(server.addr, &format!("/admin/stores/{ghost}")).await?.status == 404, "no store left behind");
    for bad in ["replace=yes", "backendId=old"] {
        let a = call(server.addr, "POST", &format!("{path}?{bad}"), &[BEARER], &export).await?;
        ensure!(a.status == 400, "{bad}: {}", a.status);
    }
    let spooled: Vec<_> = std::fs::read_dir(&server.data_dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("import-"))
        .collect();
    ensure!(spooled.is_empty(), "spooled bodies are removed: {spooled:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_spool_left_by_a_crash_is_removed_at_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (stale, other) = (dir.path().join("import-Zx81.jsonl.part"), dir.path().join("import-notes.txt"));
    std::fs::write(&stale, "half an upload")?;
    std::fs::write(&other, "not ours")?;
    let _server =
        TestServer::builder().data_dir(dir.path()).config(|c| c.admin_secret = Some(SECRET.into())).start().await?;
    ensure!(!stale.exists(), "the stale spool is gone");
    ensure!(other.exists(), "other files are left alone");
    Ok(())
}
