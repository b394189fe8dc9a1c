//! Crash safety: pushing clients, the server killed at random moments (SIGKILL) or stopped
//! (SIGTERM), restarted; every acknowledged event must be there, seqNums gap-free and unique,
//! the head equal to the last event, the backend id unchanged.
//! Trials: `LIVESTORE_SYNC_CRASH_TRIALS` (default 3 in the test command; 20+ for the long mode).

use anyhow::{bail, Context, Result};
use livestore_sync_tests::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STORES: [&str; 2] = ["crash-a", "crash-b"];

fn random_below(n: u64) -> u64 {
    RandomState::new().hash_one(Instant::now()) % n.max(1)
}

fn start(dir: &Path) -> Result<binary::Served> {
    let bin = env!("CARGO_BIN_EXE_livestore-sync");
    binary::serve(bin, dir, dir, &["--log-level", "info", "--auth-token", TOKEN], &[])
}

/// What one pusher saw acknowledged: seqNum → (name, args).
type Acked = Arc<Mutex<HashMap<(String, i64), Value>>>;

/// Push small chains until the connection dies, rebasing on ServerAheadError.
async fn pusher(addr: String, store: &'static str, who: String, acked: Acked) {
    let payload = urlencode(&urlencode(&json!({ "authToken": TOKEN }).to_string()));
    let Ok(mut c) = WsClient::connect(&format!("ws://{addr}/?storeId={store}&payload={payload}&transport=ws")).await
    else {
        return;
    };
    let mut head = 0i64;
    for n in 0u64.. {
        let size = 1 + (n % 5) as i64;
        let batch: Vec<Value> = (1..=size)
            .map(|i| {
                json!({ "name": "crashTest", "args": { "by": who, "n": n, "i": i },
                        "seqNum": head + i, "parentSeqNum": head + i - 1, "clientId": who, "sessionId": who })
            })
            .collect();
        let id = c.id();
        if c.send(&push_request(&id, store, batch.clone(), None)).await.is_err() {
            return;
        }
        let Ok(reply) = c.recv_for(&id).await else { return };
        if is_push_ack(&reply) {
            let mut acked = acked.lock().unwrap_or_else(|e| e.into_inner());
            for ev in batch {
                acked.insert((store.to_string(), ev["seqNum"].as_i64().unwrap_or(0)), ev);
            }
            head += size;
        } else if let Some(expected) = failure_error(&reply).and_then(|e| e["minimumExpectedNum"].as_i64()) {
            head = expected;
        } else {
            return;
        }
    }
}

/// Check the data file after a stop. Returns the backend ids.
fn verify(dir: &Path, acked: &Acked) -> Result<HashMap<String, String>> {
    let db = rusqlite::Connection::open(dir.join("sync.db"))?;
    let acked = acked.lock().unwrap_or_else(|e| e.into_inner());
    let mut backends = HashMap::new();
    for store in STORES {
        let (head, backend): (i64, String) =
            db.query_row("SELECT head, backendId FROM stores WHERE storeId = ?1", [store], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let mut stmt = db.prepare(
            "SELECT seqNum, parentSeqNum, name, args, clientId FROM events \
             WHERE storeKey = (SELECT storeKey FROM stores WHERE storeId = ?1) ORDER BY seqNum",
        )?;
        let rows: Vec<(i64, i64, String, String, String)> = stmt
            .query_map([store], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (i, (seq, parent, ..)) in rows.iter().enumerate() {
            if *seq != i as i64 + 1 || *parent != *seq - 1 {
                bail!("{store}: gap or repeat at position {i}: seqNum {seq} parent {parent}");
            }
        }
        let last = rows.last().map_or(0, |r| r.0);
        if head != last {
            bail!("{store}: head {head} but the last event is {last}");
        }
        let by_seq: HashMap<i64, &(i64, i64, String, String, String)> = rows.iter().map(|r| (r.0, r)).collect();
        for ((s, seq), ev) in acked.iter().filter(|((s, _), _)| s == store) {
            let Some(row) = by_seq.get(seq) else { bail!("{s}: acknowledged event {seq} is lost") };
            let args: Value = serde_json::from_str(&row.3)?;
            if args != ev["args"] || row.4 != ev["clientId"].as_str().unwrap_or_default() {
                bail!("{s}: event {seq} differs from what was acknowledged: {args} vs {}", ev["args"]);
            }
        }
        backends.insert(store.to_string(), backend);
    }
    Ok(backends)
}

async fn trial(dir: &Path, acked: &Acked, graceful: bool) -> Result<()> {
    let mut server = start(dir)?;
    let mut tasks = Vec::new();
    for p in 0..3 {
        tasks.push(tokio::spawn(pusher(
            server.addr.to_string(),
            STORES[0],
            format!("a{p}-{}", random_below(1 << 30)),
            acked.clone(),
        )));
    }
    tasks.push(tokio::spawn(pusher(
        server.addr.to_string(),
        STORES[1],
        format!("b-{}", random_below(1 << 30)),
        acked.clone(),
    )));
    tokio::time::sleep(Duration::from_millis(150 + random_below(450))).await;
    if graceful {
        let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status()?;
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = server.child.try_wait()? {
                assert!(status.success(), "graceful stop must exit 0: {status:?}");
                break;
            }
            if Instant::now() > deadline {
                bail!("no exit within 20 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    } else {
        server.child.kill()?; // SIGKILL
        server.child.wait()?;
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill_and_sigterm() -> Result<()> {
    let trials: usize = std::env::var("LIVESTORE_SYNC_CRASH_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let tmp = tempfile::tempdir()?;
    let acked: Acked = Arc::default();
    let mut backends: Option<HashMap<String, String>> = None;
    let started = Instant::now();
    for n in 0..trials + 1 {
        let graceful = n == trials; // the last trial stops with SIGTERM
        trial(tmp.path(), &acked, graceful).await?;
        let now = verify(tmp.path(), &acked).with_context(|| format!("after trial {n} (graceful: {graceful})"))?;
        if let Some(before) = &backends {
            assert_eq!(before, &now, "backend ids changed");
        }
        backends = Some(now);
    }
    let total = acked.lock().unwrap_or_else(|e| e.into_inner()).len();
    println!(
        "crash test: {trials} SIGKILL trials + 1 SIGTERM, {total} acknowledged events, 0 lost, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(total > 0, "the pushers must have pushed something");
    Ok(())
}
