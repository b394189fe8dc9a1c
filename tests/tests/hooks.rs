//! Operator hook components, one suite for both homes: each test runs against the native
//! server and against the worker under local `wrangler dev` (the same hook `.wasm` files,
//! bundled by `cloudflare/scripts/build.mjs`). Each example hook's accept and reject paths, the
//! webhook's POSTs on a loopback server and its refused call to a host not on the allowlist,
//! an on-pull refusal, and hostile hooks (loop, 4 GiB, trap, huge error) that fail only their
//! own request while another store's client keeps being served.
//!
//! Where the homes differ, the test says how and checks each side:
//! - a hook that never returns: natively it hits its CPU deadline (50 ms); on the worker it runs
//!   out of fuel (`HOOK_FUEL`, compiled in by wasm-meter), since V8 cannot stop a call from
//!   outside;
//! - counters: natively in `/metrics`; the worker has no metrics endpoint, so its log is read;
//! - a file that is not a hook: natively start-up stops; for the worker the bundle build does.

use anyhow::{ensure, Context, Result};
use livestore_sync::hooks::HookSettings;
use livestore_sync_tests::hook_builds::hook_wasm;
use livestore_sync_tests::workerd::{bundle_with_hooks, worker_with_hooks, Wrangler};
use livestore_sync_tests::{
    chain, event, failure_error, failure_message, http_post, http_request, is_push_ack, json_body, sync_url,
    unique_store, upgrade_request, urlencode, webhook_sink, TestServer, WsClient, TOKEN,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One test at a time: the hostile test times deadlines, which CPU contention from the
/// other tests of this binary (2 cores in CI) would stretch.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where a suite test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Home {
    Native,
    Worker,
}

/// A home with no auth token of its own, serving these hooks (name, crate), hook variables and
/// outbound-HTTP allowlist.
struct HookHome {
    native: Option<TestServer>,
    worker: Option<Wrangler>,
    _tmp: Option<tempfile::TempDir>,
}

impl HookHome {
    async fn start(home: Home, hooks: &[(&str, &str)], vars: &[(&str, &str)], allow_hosts: &[String]) -> Result<Self> {
        match home {
            Home::Native => {
                let allow = allow_hosts.to_vec();
                let server = server_with(hooks, vars, |s| s.allow_hosts = allow).await?;
                Ok(HookHome { native: Some(server), worker: None, _tmp: None })
            }
            Home::Worker => {
                let tmp = tempfile::tempdir()?;
                let mut specs = Vec::new();
                for (name, krate) in hooks {
                    specs.push(format!("{name}={}", hook_wasm(krate)?.display()));
                }
                let vars: serde_json::Map<String, Value> =
                    vars.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
                let (vars, allow) = (Value::Object(vars).to_string(), allow_hosts.join(","));
                let worker = worker_with_hooks(
                    tmp.path(),
                    &specs.join(","),
                    &[("HOOK_VARS", &vars), ("HOOK_ALLOW_HOSTS", &allow), ("FORWARD_HEADERS", "x-tenant")],
                )
                .await?;
                Ok(HookHome { native: None, worker: Some(worker), _tmp: Some(tmp) })
            }
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        match (&self.native, &self.worker) {
            (Some(s), _) => s.addr,
            (_, Some(w)) => w.addr,
            _ => unreachable!("a home is native or a worker"),
        }
    }

    fn ws_base(&self) -> String {
        format!("ws://{}", self.addr())
    }

    async fn connect(&self, store: &str) -> Result<WsClient> {
        WsClient::connect(&sync_url(&self.ws_base(), store, TOKEN)).await
    }

    /// The worker's log (wrangler's output); empty natively, where counters are in `/metrics`.
    fn log(&self) -> String {
        self.worker.as_ref().map(Wrangler::log).unwrap_or_default()
    }
}

/// One `#[tokio::test]` per home for a suite test `fn name(home: Home)`.
macro_rules! both_homes {
    ($suite:ident: $native:ident, $worker:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $native() -> Result<()> {
            let _turn = TURN.lock().await;
            $suite(Home::Native).await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $worker() -> Result<()> {
            let _turn = TURN.lock().await;
            $suite(Home::Worker).await
        }
    };
}

/// A native server with no `--auth-token` and these hooks (`name=path` specs) and vars.
async fn server_with(
    hooks: &[(&str, &str)],
    vars: &[(&str, &str)],
    tweak: impl FnOnce(&mut HookSettings),
) -> Result<TestServer> {
    let mut settings = HookSettings::default();
    for (name, krate) in hooks {
        settings.specs.push(format!("{name}={}", hook_wasm(krate)?.display()));
    }
    settings.vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>();
    tweak(&mut settings);
    TestServer::builder()
        .token(None)
        .config(|c| {
            c.hooks = settings;
            c.forward_headers = vec!["x-tenant".into()];
        })
        .start()
        .await
}

fn named(name: &str, seq: i64, parent: i64) -> Value {
    let mut e = event(seq, parent);
    e["name"] = json!(name);
    e
}

fn with_client(mut e: Value, client: &str) -> Value {
    e["clientId"] = json!(client);
    e
}

/// The HTTP status of a WebSocket upgrade that was refused, with the body.
async fn refused_upgrade(server: &HookHome, store: &str, payload: &Value) -> Result<(u16, String)> {
    let once = urlencode(&payload.to_string());
    let path = format!("/?storeId={store}&payload={}&transport=ws", urlencode(&once));
    let (status, raw) = http_request(server.addr(), &upgrade_request(&path)).await?;
    ensure!(status != 101, "the upgrade was accepted");
    Ok((status, raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

async fn metrics(server: &HookHome) -> Result<String> {
    Ok(http_request(server.addr(), "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?.1)
}

fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|lab| l.contains(lab)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

both_homes!(static_token_hook: the_static_token_hook_checks_payload_and_bearer_tokens, the_static_token_hook_checks_tokens_on_the_worker);

async fn static_token_hook(home: Home) -> Result<()> {
    let server = HookHome::start(home, &[("static-token", "static_token")], &[("AUTH_TOKEN", TOKEN)], &[]).await?;
    let store = unique_store("hook-token");
    let mut c = WsClient::connect(&sync_url(&server.ws_base(), &store, TOKEN)).await?;
    let (_, ok) = c.push(&store, chain(1, 2), None).await?;
    ensure!(is_push_ack(&ok), "{ok}");

    let (status, body) = refused_upgrade(&server, &store, &json!({ "authToken": "wrong" })).await?;
    ensure!(status == 400 && body.contains("Invalid auth token"), "{status} {body}");
    let (status, body) = refused_upgrade(&server, &store, &json!({})).await?;
    ensure!(status == 400 && body.contains("Missing auth token"), "{status} {body}");

    // A curl-style client: the simple protocol with an Authorization header.
    let url = format!("{}/websocket?storeId={store}", server.ws_base());
    let mut simple = WsClient::connect_with_headers(&url, &[("Authorization", &format!("Bearer {TOKEN}"))]).await?;
    simple.send(&json!({"type": "pull", "since": 0})).await?;
    let events = simple.recv().await?;
    ensure!(events["type"] == "events" && events["events"].as_array().map(Vec::len) == Some(2), "{events}");
    ensure!(
        WsClient::connect_with_headers(&url, &[("Authorization", "Bearer nope")]).await.is_err(),
        "a wrong Bearer token must be refused"
    );

    // The HTTP transport goes through the same check.
    let body = json!({"_tag":"Request","id":"0","tag":"SyncHttpRpc.Ping","payload":{"storeId":store,"payload":{"authToken":"nope"}},"headers":[]});
    let once = urlencode(&json!({ "authToken": "nope" }).to_string());
    let (status, text) = http_post(
        server.addr(),
        &format!("/?storeId={store}&payload={}&transport=http", urlencode(&once)),
        &body.to_string(),
    )
    .await?;
    ensure!(status == 400 && text.contains("Invalid auth token"), "{status} {text}");
    Ok(())
}

fn jwt(secret: &str, claims: Value) -> Result<String> {
    use jsonwebtoken::{encode, EncodingKey, Header};
    Ok(encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes()))?)
}

both_homes!(jwt_hook: the_jwt_hook_checks_signature_expiry_and_store, the_jwt_hook_checks_tokens_on_the_worker);

async fn jwt_hook(home: Home) -> Result<()> {
    let server = HookHome::start(home, &[("jwt", "jwt")], &[("LIVESTORE_SECRET", "s3cret")], &[]).await?;
    let store = unique_store("hook-jwt");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let good = jwt("s3cret", json!({ "sub": "u1", "exp": now + 600, "storeId": store }))?;
    let mut c = WsClient::connect(&sync_url(&server.ws_base(), &store, &good)).await?;
    let (_, ok) = c.push(&store, chain(1, 1), None).await?;
    ensure!(is_push_ack(&ok), "{ok}");

    let expired = jwt("s3cret", json!({ "exp": now - 600, "storeId": store }))?;
    let (status, body) = refused_upgrade(&server, &store, &json!({ "authToken": expired })).await?;
    ensure!(status == 400 && body.contains("Invalid auth token") && body.contains("Expired"), "{status} {body}");
    let forged = jwt("guessed", json!({ "exp": now + 600 }))?;
    let (status, body) = refused_upgrade(&server, &store, &json!({ "authToken": forged })).await?;
    ensure!(status == 400 && body.contains("InvalidSignature"), "{status} {body}");
    let other_store = jwt("s3cret", json!({ "exp": now + 600, "storeId": "someone-else" }))?;
    let (status, body) = refused_upgrade(&server, &store, &json!({ "authToken": other_store })).await?;
    ensure!(status == 400 && body.contains("issued for store"), "{status} {body}");
    Ok(())
}

both_homes!(rate_limit_hook: the_rate_limit_hook_allows_100_pushes_per_minute_per_client, the_rate_limit_hook_limits_on_the_worker);

async fn rate_limit_hook(home: Home) -> Result<()> {
    // Stay inside one calendar minute (the limiter's window).
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    if secs % 60 > 45 {
        tokio::time::sleep(Duration::from_secs(61 - secs % 60)).await;
    }
    let server = HookHome::start(home, &[("rate-limit", "rate_limit")], &[], &[]).await?;
    let store = unique_store("hook-rate");
    let mut c = server.connect(&store).await?;
    for seq in 1..=100 {
        let (_, ok) = c.push(&store, vec![with_client(event(seq, seq - 1), "busy")], None).await?;
        ensure!(is_push_ack(&ok), "push {seq}: {ok}");
    }
    let (_, refused) = c.push(&store, vec![with_client(event(101, 100), "busy")], None).await?;
    let error = failure_error(&refused).context("the 101st push must fail")?;
    ensure!(error["_tag"] == "UnknownError", "{refused}");
    ensure!(error["cause"]["message"].as_str().unwrap_or_default().contains("limit 100"), "{refused}");
    let (_, other) = c.push(&store, vec![with_client(event(101, 100), "calm")], None).await?;
    ensure!(is_push_ack(&other), "another client is not limited: {other}");
    Ok(())
}

both_homes!(event_allowlist_hook: the_event_allowlist_hook_rejects_unlisted_names_and_stores_nothing, the_event_allowlist_hook_rejects_on_the_worker);

async fn event_allowlist_hook(home: Home) -> Result<()> {
    let server =
        HookHome::start(home, &[("allowlist", "event_allowlist")], &[("ALLOWED_EVENTS", "todoCreated-v1,chat*")], &[])
            .await?;
    let store = unique_store("hook-allow");
    let mut c = server.connect(&store).await?;
    let (_, ok) = c.push(&store, vec![event(1, 0), named("chatMessage", 2, 1)], None).await?;
    ensure!(is_push_ack(&ok), "{ok}");
    let (_, refused) = c.push(&store, vec![event(3, 2), named("dropTables", 4, 3)], None).await?;
    let error = failure_error(&refused).context("an unlisted name must fail the batch")?;
    ensure!(error["cause"]["message"].as_str().unwrap_or_default().contains("dropTables"), "{refused}");
    let (seqs, _) = c.pull_seq_nums(&store).await?;
    ensure!(seqs == vec![1, 2], "the refused batch left nothing behind: {seqs:?}");

    let mut simple = WsClient::connect(&format!("{}/websocket?storeId={store}", server.ws_base())).await?;
    simple.send(&json!({"type":"push","events":[{"id":"e1","type":"dropTables","data":{}}]})).await?;
    let reply = simple.recv().await?;
    ensure!(reply["type"] == "error" && reply["code"] == "rejected", "{reply}");
    simple.send(&json!({"type":"push","events":[{"id":"e2","type":"chatMessage","data":{"t":1}}]})).await?;
    let reply = simple.recv().await?;
    ensure!(reply["type"] == "ack" && reply["seqNums"] == json!([3]), "{reply}");
    Ok(())
}

both_homes!(webhook_hook: the_webhook_hook_posts_committed_batches_to_an_allowlisted_host, the_webhook_hook_posts_from_the_worker);

async fn webhook_hook(home: Home) -> Result<()> {
    let (port, mut posts) = webhook_sink().await?;
    let url = format!("http://127.0.0.1:{port}/livestore");
    let server =
        HookHome::start(home, &[("webhook", "webhook")], &[("WEBHOOK_URL", &url)], &[format!("127.0.0.1:{port}")])
            .await?;
    // The hook context carries any store id exactly.
    let store = unique_store("hook webhook: Zoë/東京");
    let mut c = server.connect(&store).await?;
    for (first, last) in [(1, 3), (4, 4), (5, 6)] {
        let (_, ok) = c.push(&store, chain(first, last), None).await?;
        ensure!(is_push_ack(&ok), "{ok}");
    }
    // One POST per batch, in commit order, off the ack path.
    let mut batches = Vec::new();
    for _ in 0..3 {
        let request = tokio::time::timeout(Duration::from_secs(20), posts.recv())
            .await
            .with_context(|| format!("the webhook posted only {batches:?}:\n{}", server.log()))?
            .context("sink closed")?;
        ensure!(request.starts_with("POST /livestore "), "{request}");
        let doc = json_body(&request)?;
        ensure!(doc["storeId"] == store.as_str(), "{doc}");
        ensure!(doc["events"][0]["args"]["id"].as_str().is_some_and(|id| id.starts_with("todo-")), "{doc}");
        let seqs: Vec<i64> =
            doc["events"].as_array().context("events")?.iter().filter_map(|e| e["seqNum"].as_i64()).collect();
        batches.push(seqs);
    }
    ensure!(batches == vec![vec![1, 2, 3], vec![4], vec![5, 6]], "{batches:?}");
    Ok(())
}

both_homes!(off_allowlist_call: a_hook_calling_a_host_off_the_allowlist_is_refused, a_hook_calling_a_host_off_the_allowlist_is_refused_on_the_worker);

async fn off_allowlist_call(home: Home) -> Result<()> {
    let (port, mut posts) = webhook_sink().await?;
    let url = format!("http://127.0.0.1:{port}/livestore");
    // Only another port is allowlisted: the sink must never be reached.
    let server = HookHome::start(
        home,
        &[("webhook-denied", "webhook"), ("hostile-denied", "hostile")],
        &[("WEBHOOK_URL", &url), ("HOSTILE_URL", &url)],
        &[format!("127.0.0.1:{}", port.wrapping_add(1))],
    )
    .await?;
    let store = unique_store("hook-denied");
    let mut c = server.connect(&store).await?;
    let (_, ok) = c.push(&store, chain(1, 1), None).await?;
    ensure!(is_push_ack(&ok), "after-push failures never fail the push: {ok}");
    // An on-push hook that calls out gets the refusal as its own error.
    let (_, refused) = c.push(&store, vec![named("call-out", 2, 1)], None).await?;
    let message = failure_message(&refused);
    ensure!(message.contains("HttpRequestDenied"), "{refused}");
    let (_, ok) = c.push(&store, chain(2, 2), None).await?;
    ensure!(is_push_ack(&ok), "the store keeps serving: {ok}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let refusal = format!("tried to reach 127.0.0.1:{port}, which is not allowlisted");
    loop {
        // Both refusals are counted: natively in /metrics, on the worker in its log.
        let seen = match home {
            Home::Native => {
                let m = metrics(&server).await?;
                let denied = metric(&m, "livestore_sync_hook_http_denied_total", &["hook=\"webhook-denied\""]);
                let failed =
                    metric(&m, "livestore_sync_hook_failures_total", &["hook=\"webhook-denied\"", "kind=\"error\""]);
                let hostile = metric(&m, "livestore_sync_hook_http_denied_total", &["hook=\"hostile-denied\""]);
                denied >= 1.0 && failed >= 1.0 && hostile >= 1.0
            }
            Home::Worker => {
                let log = server.log();
                ["hook \"webhook-denied\"", "hook \"hostile-denied\""]
                    .iter()
                    .all(|hook| log.lines().any(|l| l.contains(hook) && l.contains(&refusal)))
            }
        };
        if seen {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the refusals were not counted:\n{}{}",
            metrics(&server).await?,
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(posts.try_recv().is_err(), "nothing may reach a host that is not allowlisted");
    Ok(())
}

both_homes!(hostile_hooks: hostile_hooks_fail_only_their_request_and_other_stores_keep_going, hostile_hooks_fail_only_their_request_on_the_worker);

async fn hostile_hooks(home: Home) -> Result<()> {
    let server = HookHome::start(home, &[("hostile", "hostile")], &[], &[]).await?;
    // How long a failing call may take, and another store may wait: natively the CPU deadline
    // (plus scheduling); on the worker the default fuel, about 50 ms of a tight loop on this
    // class of machine, with room for a cold isolate compiling the hook.
    let bound = match home {
        Home::Native => HookSettings::default().cpu_deadline + Duration::from_millis(100),
        Home::Worker => Duration::from_millis(1500),
    };
    let victim = unique_store("hook-victim");
    let bystander = unique_store("hook-bystander");
    let mut v = server.connect(&victim).await?;
    let mut b = server.connect(&bystander).await?;
    // Both stores are open (and the hook instantiated) before the clock starts.
    let (_, ok) = v.push(&victim, vec![event(1, 0)], None).await?;
    ensure!(is_push_ack(&ok), "{ok}");

    // Another store's client pushes throughout.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let (flag, count) = (stop.clone(), acked.clone());
    let bystander_id = bystander.clone();
    let steady = tokio::spawn(async move {
        let mut seq = 0;
        let mut slowest = Duration::ZERO;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            count.store(seq, std::sync::atomic::Ordering::Relaxed);
            seq += 1;
            let started = Instant::now();
            let (_, ok) = b.push(&bystander_id, vec![event(seq, seq - 1)], None).await?;
            slowest = slowest.max(started.elapsed());
            ensure!(is_push_ack(&ok), "the other store saw an error: {ok}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        anyhow::Ok((seq, slowest))
    });

    let never_returns = match home {
        Home::Native => "exceeded its 50 ms CPU deadline",
        Home::Worker => "ran out of fuel (20000000 loop iterations and calls per call, HOOK_FUEL)",
    };
    let cases = [
        ("loop", never_returns),
        ("alloc", "exceeded its 64 MiB memory cap"),
        ("trap", "trapped"),
        ("huge-error", "byte message (limit 16384)"),
    ];
    for (seq, (name, expected)) in (1i64..).zip(cases) {
        let started = Instant::now();
        let (_, failed) = v.push(&victim, vec![named(name, seq + 1, seq)], None).await?;
        let took = started.elapsed();
        let message = failure_message(&failed);
        println!("{home:?} {name}: failed after {took:?}: {message}");
        ensure!(message.contains("hook \"hostile\" failed") && message.contains(expected), "{name}: {failed}");
        ensure!(took <= bound, "{name}: failed after {took:?}");
        // The same connection and store go on.
        let (_, ok) = v.push(&victim, vec![event(seq + 1, seq)], None).await?;
        ensure!(is_push_ack(&ok), "{name}: the store must keep serving: {ok}");
    }
    // The cases can be over in a few hook deadlines; give the other client time to show progress.
    let settle = Instant::now() + Duration::from_secs(5);
    while acked.load(std::sync::atomic::Ordering::Relaxed) < 5 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (pushes, slowest) = steady.await??;
    println!("{home:?}: the other store: {pushes} pushes, slowest ack {slowest:?}");
    ensure!(pushes > 4, "the other store's client made progress ({pushes} pushes)");
    // A store sharing the victim's thread waits at most for one failing call.
    ensure!(slowest <= bound, "another store stalled for {slowest:?}");
    match home {
        Home::Native => {
            let m = metrics(&server).await?;
            for kind in ["cpu-deadline", "memory", "trap", "output"] {
                let n = metric(
                    &m,
                    "livestore_sync_hook_failures_total",
                    &["hook=\"hostile\"", &format!("kind=\"{kind}\"")],
                );
                ensure!(n >= 1.0, "no {kind} failure counted:\n{m}");
            }
        }
        Home::Worker => {
            // wrangler writes the worker's log as it comes: give the last lines a moment.
            let logged = |log: &str, cause: &str| {
                log.lines().any(|l| l.contains("hook hostile (onPush) failed") && l.contains(cause))
            };
            let causes = ["ran out of fuel", "memory cap", "trapped"];
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut log = server.log();
            while !causes.iter().all(|c| logged(&log, c)) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                log = server.log();
            }
            for cause in causes {
                ensure!(logged(&log, cause), "the {cause} failure is not logged:\n{log}");
            }
        }
    }
    Ok(())
}

both_homes!(on_pull_refusal: an_on_pull_hook_can_refuse_a_pull, an_on_pull_hook_can_refuse_a_pull_on_the_worker);

async fn on_pull_refusal(home: Home) -> Result<()> {
    let server = HookHome::start(home, &[("gate", "hostile")], &[], &[]).await?;
    let store = unique_store("hook-pull");
    let mut c = server.connect(&store).await?;
    let (_, ok) = c.push(&store, chain(1, 3), None).await?;
    ensure!(is_push_ack(&ok), "{ok}");
    let id = c.id();
    c.send(&livestore_sync_tests::pull_request(&id, &store, None, true)).await?;
    let refused = c.recv_for(&id).await?;
    let message = failure_message(&refused);
    ensure!(message.contains("must start from a cursor"), "{refused}");
    let (seqs, backend) = c.pull_seq_nums(&store).await?;
    ensure!(seqs == vec![1, 2, 3], "a non-live pull is allowed: {seqs:?}");
    let id = c.id();
    c.send(&livestore_sync_tests::pull_request(&id, &store, Some((&backend, 3)), true)).await?;
    let chunk = c.recv_for(&id).await?;
    ensure!(chunk["_tag"] == "Chunk", "a live pull from a cursor is allowed: {chunk}");
    Ok(())
}

/// Natively, start-up stops; for the worker, the bundle build does, with the same words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_hook_stops_start_up_with_a_clear_error() -> Result<()> {
    let _turn = TURN.lock().await;
    let tmp = tempfile::tempdir()?;
    let junk = tmp.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all")?;
    let err = server_with(&[], &[], |s| s.specs = vec![junk.display().to_string()]).await.err().context("must fail")?;
    let text = format!("{err:#}");
    ensure!(text.contains("junk") && text.contains("not a WebAssembly component"), "{text}");

    // A component that exports no hook interface (the sync component itself).
    let sync = tmp.path().join("sync.wasm");
    std::fs::write(&sync, livestore_sync::runtime::GUEST_WASM)?;
    let err = server_with(&[], &[], |s| s.specs = vec![sync.display().to_string()]).await.err().context("must fail")?;
    let text = format!("{err:#}");
    ensure!(text.contains("hook \"sync\"") || text.contains("\"sync\""), "{text}");
    ensure!(text.contains("imports something hooks may not use") || text.contains("not a hook"), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_hook_stops_the_worker_build_with_a_clear_error() -> Result<()> {
    let _turn = TURN.lock().await;
    let tmp = tempfile::tempdir()?;
    let junk = tmp.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all")?;
    let err = bundle_with_hooks(&tmp.path().join("a"), &format!("junk={}", junk.display()))
        .await
        .err()
        .context("must fail")?;
    let text = format!("{err:#}");
    ensure!(text.contains("junk") && text.contains("not a WebAssembly component"), "{text}");

    let sync = tmp.path().join("sync.wasm");
    std::fs::write(&sync, livestore_sync::runtime::GUEST_WASM)?;
    let err = bundle_with_hooks(&tmp.path().join("b"), &format!("sync={}", sync.display()))
        .await
        .err()
        .context("must fail")?;
    let text = format!("{err:#}");
    ensure!(text.contains("is not a hook: it exports no livestore:hooks interface"), "{text}");
    Ok(())
}
