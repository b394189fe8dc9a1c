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
    binary::run_cli(env!("CARGO_BIN_EXE_livestore-sync"), data_dir, &[("DATABASE_URL", url)], args)
}

fn ok(data_dir: &Path, url: &str, args: &[&str]) -> Result<String> {
    binary::cli_ok(env!("CARGO_BIN_EXE_livestore-sync"), data_dir, &[("DATABASE_URL", url)], args)
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

/// Three nodes (servers) on one database.
async fn nodes(url: &str, n: usize) -> Result<Vec<TestServer>> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(server_on(url).await?);
    }
    Ok(nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_pull_on_one_node_gets_batches_admitted_by_another_once_in_order() -> Result<()> {
    let pg = PgCluster::start()?;
    let nodes = nodes(&pg.url("fanout")?, 3).await?;
    let store = unique_store("fanout");
    // Live pulls on B and C, caught up.
    let mut pullers = Vec::new();
    for node in &nodes[1..] {
        let mut p = node.connect(&store).await?;
        p.send(&pull_request("live", &store, None, true)).await?;
        p.recv().await?;
        p.send(&ack("live")).await?;
        pullers.push(p);
    }
    let mut pusher = nodes[0].connect(&store).await?;
    let (_, backend) = pusher.pull_seq_nums(&store).await?;
    for start in (1..=50).step_by(10) {
        let (_, ack) = pusher.push(&store, chain(start, start + 9), Some(&backend)).await?;
        ensure!(is_push_ack(&ack), "{ack}");
    }
    for p in &mut pullers {
        let mut seen = Vec::new();
        while seen.len() < 50 {
            let chunk = p.recv().await?;
            ensure!(chunk["_tag"] == "Chunk", "{chunk}");
            seen.extend(seq_nums(&chunk["values"][0]));
            p.send(&ack("live")).await?;
        }
        assert_eq!(seen, (1..=50).collect::<Vec<_>>(), "every batch once, in order");
        // Nothing more (a duplicate would be queued before this probe's answer).
        p.assert_quiet(&store).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_pushers_over_three_nodes_at_one_parent_exactly_one_is_accepted() -> Result<()> {
    let pg = PgCluster::start()?;
    let nodes = nodes(&pg.url("race")?, 3).await?;
    for round in 0..5 {
        let store = unique_store(&format!("race-{round}"));
        let mut clients = Vec::new();
        for i in 0..8 {
            clients.push(nodes[i % 3].connect(&store).await?);
        }
        // Everyone has the store open (its head cached at 0) before anyone pushes.
        for c in &mut clients {
            c.pull_seq_nums(&store).await?;
        }
        let pushes = clients.into_iter().enumerate().map(|(i, mut c)| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut e = event(1, 0);
                e["clientId"] = json!(format!("pusher-{i}"));
                let (_, reply) = c.push(&store, vec![e], None).await?;
                anyhow::Ok(reply)
            })
        });
        let replies: Vec<Value> =
            futures_util::future::join_all(pushes).await.into_iter().map(|r| r?).collect::<Result<_>>()?;
        let accepted = replies.iter().filter(|r| is_push_ack(r)).count();
        assert_eq!(accepted, 1, "round {round}: {replies:?}");
        for r in replies.iter().filter(|r| !is_push_ack(r)) {
            assert_eq!(failure_error(r).map(|e| e["_tag"].clone()), Some(json!("ServerAheadError")), "{r}");
        }
        let mut check = nodes[round % 3].connect(&store).await?;
        assert_eq!(check.pull_seq_nums(&store).await?.0, vec![1]);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_real_clients_on_two_of_three_nodes_rebase_to_200_events() -> Result<()> {
    let pg = PgCluster::start()?;
    let nodes = nodes(&pg.url("rebase")?, 3).await?;
    let urls = format!("{},{}", nodes[0].ws_base(), nodes[2].ws_base());
    let out = node_test_with("multi-node.test.mjs", &[("LIVESTORE_SYNC_URLS", &urls)]).await?;
    ensure!(out.contains("rebases:"), "{out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_through_one_node_closes_the_stores_sockets_on_every_node() -> Result<()> {
    let pg = PgCluster::start()?;
    let url = pg.url("reset")?;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(
            TestServer::builder()
                .postgres(&url)
                .config(|c| c.admin_secret = Some("admin-s3cret".into()))
                .start()
                .await?,
        );
    }
    let store = unique_store("reset");
    let mut clients = Vec::new();
    for node in &nodes {
        let mut c = node.connect(&store).await?;
        c.pull_seq_nums(&store).await?;
        clients.push(c);
    }
    clients[0].push(&store, chain(1, 3), None).await?;
    let (status, raw) = http_request(
        nodes[1].addr,
        &format!(
            "POST /admin/stores/{}/reset HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-s3cret\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            urlencode(&store)
        ),
    )
    .await?;
    ensure!(status == 200, "{raw}");
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.recv_close().await?, Some(1012), "node {i} closed the store's socket");
    }
    // Every node serves the reset store: no events, the new backend id, pushes from ROOT.
    let reset: Value = serde_json::from_str(raw.split("\r\n\r\n").nth(1).unwrap_or_default())?;
    let backend = reset["backendId"].as_str().context("backendId")?;
    let mut fresh = Vec::new();
    for node in &nodes {
        let mut c = node.connect(&store).await?;
        let (seqs, seen_backend) = c.pull_seq_nums(&store).await?;
        assert!(seqs.is_empty() && seen_backend == backend, "{seqs:?} {seen_backend}");
        fresh.push(c);
    }
    let (_, ack) = fresh[2].push(&store, chain(1, 1), Some(backend)).await?;
    ensure!(is_push_ack(&ack), "{ack}");
    assert_eq!(fresh[0].pull_seq_nums(&store).await?.0, vec![1]);
    Ok(())
}

/// What the pushers saw acknowledged: seqNum → the event.
type Acked = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<i64, Value>>>;

/// Push small batches to `store` through `addrs[first]`, rebasing on ServerAheadError, retrying
/// refused pushes, and moving to the next node when a connection dies, until `stop`. Returns
/// how many batches were acknowledged after `moved` became true through another node than
/// `first` (the clients of a killed node continue elsewhere).
async fn pusher(
    addrs: Vec<String>,
    first: usize,
    store: &'static str,
    who: String,
    acked: Acked,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> u64 {
    use std::sync::atomic::Ordering::Relaxed;
    let mut node = first;
    let mut head = 0i64;
    let mut elsewhere = 0;
    let mut n = 0u64;
    while !stop.load(Relaxed) {
        let url = sync_url(&format!("ws://{}", addrs[node]), store, TOKEN);
        let Ok(mut c) = WsClient::connect(&url).await else {
            node = (node + 1) % addrs.len();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        while !stop.load(Relaxed) {
            n += 1;
            let size = 1 + (n % 4) as i64;
            let batch: Vec<Value> = (1..=size)
                .map(|i| {
                    json!({ "name": "crashTest", "args": { "by": who, "n": n, "i": i },
                            "seqNum": head + i, "parentSeqNum": head + i - 1, "clientId": who, "sessionId": who })
                })
                .collect();
            let id = c.id();
            if c.send(&push_request(&id, store, batch.clone(), None)).await.is_err() {
                break;
            }
            let Ok(reply) = c.recv_for(&id).await else { break };
            if is_push_ack(&reply) {
                let mut acked = acked.lock().unwrap_or_else(|e| e.into_inner());
                for ev in batch {
                    acked.insert(ev["seqNum"].as_i64().unwrap_or(0), ev);
                }
                head += size;
                if node != first {
                    elsewhere += 1;
                }
            } else if let Some(expected) = failure_error(&reply).and_then(|e| e["minimumExpectedNum"].as_i64()) {
                head = expected;
            } else {
                // Refused (storage unreachable): never acknowledged; try again shortly.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        node = (node + 1) % addrs.len();
    }
    elsewhere
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_or_a_restarted_postgres_loses_no_acknowledged_event() -> Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::time::Duration;
    let pg = PgCluster::start()?;
    let url = pg.url("crash")?;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir()).collect::<Result<_, _>>()?;
    let mut served = Vec::new();
    for dir in &dirs {
        let bin = env!("CARGO_BIN_EXE_livestore-sync");
        served.push(binary::serve(bin, dir.path(), dir.path(), &["--auth-token", TOKEN], &[("DATABASE_URL", &url)])?);
    }
    let addrs: Vec<String> = served.iter().map(|s| s.addr.to_string()).collect();
    let acked: Acked = Default::default();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for p in 0..6 {
        let who = format!("p{p}");
        tasks.push((p % 3, tokio::spawn(pusher(addrs.clone(), p % 3, "crash", who, acked.clone(), stop.clone()))));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    // kill -9 one node under load.
    served[1].child.kill()?;
    served[1].child.wait()?;
    let at_kill = acked.lock().map(|a| a.len()).unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Postgres stops at once (no checkpoint) and comes back.
    pg.stop_server()?;
    let at_stop = acked.lock().map(|a| a.len()).unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let health = |addr: std::net::SocketAddr| async move {
        let (status, _) = http_request(addr, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
        anyhow::Ok(status)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while health(served[0].addr).await? != 503 {
        ensure!(std::time::Instant::now() < deadline, "/health kept answering 200 while Postgres was down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A store no node can open now is refused at once (the upgrade fails, or the pull ends in
    // a failure), never left hanging.
    let opened = tokio::time::timeout(
        Duration::from_secs(10),
        WsClient::connect(&sync_url(&format!("ws://{}", served[2].addr), "never-opened", TOKEN)),
    )
    .await
    .context("opening a store while Postgres is down must not hang")?;
    if let Ok(mut reader) = opened {
        let id = reader.id();
        reader.send(&pull_request(&id, "never-opened", None, false)).await?;
        let answer = reader.recv_for(&id).await?;
        ensure!(answer["_tag"] == "Exit" && !failure_message(&answer).is_empty(), "{answer}");
    }
    let during = acked.lock().map(|a| a.len()).unwrap_or_default();
    pg.start_server()?;
    let resumed_by = std::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().map(|a| a.len()).unwrap_or_default() <= during + 20 {
        ensure!(std::time::Instant::now() < resumed_by, "service did not resume within 30 s of Postgres' restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while health(served[0].addr).await? != 200 {
        ensure!(std::time::Instant::now() < deadline, "/health did not recover after Postgres came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Relaxed);
    let mut elsewhere = Vec::new();
    for (first, t) in tasks {
        let moved = tokio::time::timeout(Duration::from_secs(20), t).await??;
        if first == 1 {
            elsewhere.push(moved);
        }
    }
    ensure!(elsewhere.iter().all(|&n| n > 0), "the killed node's clients continued elsewhere: {elsewhere:?}");
    ensure!(during == at_stop, "nothing is acknowledged while Postgres is down ({at_stop} → {during})");

    // Every acknowledged event is stored, seqNums gap-free from 1, the head the last one.
    let rows = pg.psql(
        "crash",
        "SELECT e.seq_num || '|' || e.parent_seq_num || '|' || e.args FROM livestore_sync_events e \
         JOIN livestore_sync_stores s USING (store_key) WHERE s.store_id = 'crash' ORDER BY e.seq_num",
    )?;
    let head = pg.psql("crash", "SELECT head FROM livestore_sync_stores WHERE store_id = 'crash'")?;
    let stored: Vec<(i64, i64, Value)> = rows
        .lines()
        .map(|l| {
            let mut parts = l.splitn(3, '|');
            let seq = parts.next().unwrap_or_default().parse()?;
            let parent = parts.next().unwrap_or_default().parse()?;
            Ok((seq, parent, serde_json::from_str(parts.next().unwrap_or_default())?))
        })
        .collect::<Result<_>>()?;
    for (i, (seq, parent, _)) in stored.iter().enumerate() {
        ensure!(*seq == i as i64 + 1 && *parent == *seq - 1, "gap or repeat at {i}: {seq} after {parent}");
    }
    assert_eq!(head.parse::<i64>()?, stored.len() as i64, "the head is the last event");
    let acked = acked.lock().map(|a| a.clone()).unwrap_or_default();
    for (seq, event) in &acked {
        let found = stored.get((*seq - 1) as usize).map(|s| &s.2);
        ensure!(found == Some(&event["args"]), "acknowledged event {seq} lost: {event} vs {found:?}");
    }
    println!(
        "postgres crash test: {} acknowledged ({at_kill} before the kill, {at_stop} before Postgres stopped), {} stored, 0 lost",
        acked.len(),
        stored.len()
    );
    Ok(())
}

/// TLS to Postgres: `sslmode=require` with the server's CA given (`--database-ca-file`) works
/// and the connections really are encrypted; without the CA, start-up stops and says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_postgres_checks_the_certificate_against_the_given_ca() -> Result<()> {
    let pg = PgCluster::start_tls()?;
    let url = format!("{}?sslmode=require", pg.url("tls")?);
    let untrusted = TestServer::builder().postgres(&url).start().await;
    let err = format!("{:#}", untrusted.err().context("an untrusted certificate must refuse the start")?);
    ensure!(err.contains("--database-ca-file"), "{err}");

    let pg_config = livestore_sync::storage::postgres::PgConfig { url: url.clone(), ca_file: Some(pg.ca_file()) };
    let server = TestServer::builder().config(move |c| c.postgres = Some(pg_config)).start().await?;
    let store = unique_store("tls");
    let mut c = server.connect(&store).await?;
    let (_, ack) = c.push(&store, chain(1, 3), None).await?;
    ensure!(is_push_ack(&ack), "{ack}");
    assert_eq!(c.pull_seq_nums(&store).await?.0, vec![1, 2, 3]);
    let encrypted = pg.psql(
        "tls",
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = 'tls' AND s.ssl AND a.pid <> pg_backend_pid()",
    )?;
    ensure!(encrypted.parse::<u32>()? >= 2, "the shards' and the listener's connections use TLS: {encrypted}");
    Ok(())
}

/// Hooks do not depend on the engine: an on-push hook's refusal leaves nothing in Postgres.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_a_hook_refuses_leaves_nothing_in_postgres() -> Result<()> {
    let pg = PgCluster::start()?;
    let url = pg.url("hooks")?;
    let mut settings = livestore_sync::hooks::HookSettings::default();
    settings.specs.push(format!("allowlist={}", hook_builds::hook_wasm("event_allowlist")?.display()));
    settings.vars.insert("ALLOWED_EVENTS".into(), "todoCreated-v1".into());
    let server = TestServer::builder().postgres(&url).config(move |c| c.hooks = settings).start().await?;
    let store = unique_store("hook");
    let mut c = server.connect(&store).await?;
    let (_, ok) = c.push(&store, chain(1, 2), None).await?;
    ensure!(is_push_ack(&ok), "{ok}");
    let mut bad = event(4, 3);
    bad["name"] = json!("dropTables");
    let (_, refused) = c.push(&store, vec![event(3, 2), bad], None).await?;
    ensure!(failure_error(&refused).is_some(), "{refused}");
    let stored =
        pg.psql("hooks", "SELECT string_agg(seq_num::text, ',' ORDER BY seq_num) FROM livestore_sync_events")?;
    assert_eq!(stored, "1,2", "the refused batch left nothing behind");
    let head = pg.psql("hooks", "SELECT head FROM livestore_sync_stores")?;
    assert_eq!(head, "2");
    Ok(())
}

/// A node whose listening connection drops misses notices; when it reconnects it brings its open
/// stores up to date, so its live pulls still get every batch once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_its_listening_connection_catches_its_live_pulls_up() -> Result<()> {
    let pg = PgCluster::start()?;
    let nodes = nodes(&pg.url("relisten")?, 2).await?;
    let store = unique_store("relisten");
    let mut puller = nodes[1].connect(&store).await?;
    puller.send(&pull_request("live", &store, None, true)).await?;
    puller.recv().await?;
    puller.send(&ack("live")).await?;
    let mut pusher = nodes[0].connect(&store).await?;
    let listeners = "SELECT count(*) FROM pg_stat_activity WHERE datname = 'relisten' AND query LIKE 'LISTEN%'";
    let mut seen = Vec::new();
    for round in 0..3i64 {
        // Cut every node's listening connection, then commit while they are reconnecting.
        pg.psql("relisten", &listeners.replace("count(*)", "pg_terminate_backend(pid)"))?;
        let first = round * 5 + 1;
        let (_, ok) = pusher.push(&store, chain(first, first + 4), None).await?;
        ensure!(is_push_ack(&ok), "{ok}");
        while seen.len() < (first + 4) as usize {
            let chunk = puller.recv().await.with_context(|| format!("round {round}: after {seen:?}"))?;
            seen.extend(seq_nums(&chunk["values"][0]));
            puller.send(&ack("live")).await?;
        }
    }
    assert_eq!(seen, (1..=15).collect::<Vec<_>>(), "every batch once, in order");
    puller.assert_quiet(&store).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pg.psql("relisten", listeners)? != "2" {
        ensure!(std::time::Instant::now() < deadline, "the nodes did not listen again");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A node that has not heard of a reset elsewhere (its listening connection is down) never
/// writes on top of the new history: its append names the backend id it knows, Postgres refuses
/// it, and the node drops the store so its clients re-sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_a_reset_writes_nothing_on_the_new_history() -> Result<()> {
    let pg = PgCluster::start()?;
    let url = pg.url("missed")?;
    let mut nodes = Vec::new();
    for _ in 0..2 {
        nodes.push(
            TestServer::builder()
                .postgres(&url)
                .config(|c| c.admin_secret = Some("admin-s3cret".into()))
                .start()
                .await?,
        );
    }
    let store = unique_store("missed");
    let mut old = nodes[1].connect(&store).await?;
    let (_, ok) = old.push(&store, chain(1, 3), None).await?;
    ensure!(is_push_ack(&ok), "{ok}");
    let (_, old_backend) = old.pull_seq_nums(&store).await?;
    pg.psql("missed", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")?;
    let (status, raw) = http_request(
        nodes[0].addr,
        &format!(
            "POST /admin/stores/{}/reset HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-s3cret\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            urlencode(&store)
        ),
    )
    .await?;
    ensure!(status == 200, "{raw}");
    // The new history reaches head 3 too, so only the backend id tells them apart.
    let mut fresh = nodes[0].connect(&store).await?;
    let (_, new_backend) = fresh.pull_seq_nums(&store).await?;
    let (_, ok) = fresh.push(&store, chain(1, 3), Some(&new_backend)).await?;
    ensure!(is_push_ack(&ok), "{ok}");
    let (_, reply) = match old.push(&store, chain(4, 4), Some(&old_backend)).await {
        Ok(reply) => reply,
        Err(_) => (String::new(), json!({ "closed": true })), // already dropped by a re-sync
    };
    ensure!(!is_push_ack(&reply), "a push on the old history was accepted: {reply}");
    let stored =
        pg.psql("missed", "SELECT string_agg(seq_num::text, ',' ORDER BY seq_num) FROM livestore_sync_events")?;
    assert_eq!(stored, "1,2,3", "nothing written on top of the new history");
    // The old client reconnects and learns of the reset.
    let mut again = nodes[1].connect(&store).await?;
    let (seqs, backend) = again.pull_seq_nums(&store).await?;
    assert_eq!((seqs, backend), (vec![1, 2, 3], new_backend));
    Ok(())
}
