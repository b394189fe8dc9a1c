//! Fan-out with a native client: N live pullers and one pusher speaking the LiveStore wire
//! frames (as `bench.mjs` does), but in Rust, so that a single Node process parsing a
//! thousand messages per round is not what the figure measures. Per round: one event pushed,
//! the time until every puller has received it.
//! Usage: fanout_native URL [pullers] [rounds] [runs]

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use livestore_sync_bench::{median, percentile, url_and_counts};
use livestore_sync_tests::{ack, event, pull_request, push_request, sync_url, TOKEN};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// Per seqNum, how many pullers have it; and a wake-up for the round's waiter.
struct Arrivals {
    counts: Vec<AtomicUsize>,
    ready: AtomicUsize,
    notify: Notify,
}

async fn puller(url: String, store_id: String, arrivals: Arc<Arrivals>) -> Result<()> {
    let (ws, _) = tokio_tungstenite::connect_async(url).await.context("puller connect")?;
    let (mut sink, mut stream) = ws.split();
    sink.send(Message::text(pull_request("0", &store_id, None, true).to_string())).await?;
    let ack = ack("0").to_string();
    let mut caught_up = false;
    while let Some(msg) = stream.next().await {
        let Message::Text(text) = msg? else { continue };
        let frame: Value = serde_json::from_str(text.as_str())?;
        if frame["_tag"] != "Chunk" {
            if frame["_tag"] == "Exit" {
                bail!("the pull ended: {frame}");
            }
            continue;
        }
        sink.send(Message::text(ack.clone())).await?;
        let batches = frame["values"].as_array().into_iter().flatten();
        for item in batches.flat_map(|v| v["batch"].as_array().into_iter().flatten()) {
            let seq = item["eventEncoded"]["seqNum"].as_u64().unwrap_or(0) as usize;
            if let Some(count) = arrivals.counts.get(seq) {
                count.fetch_add(1, Ordering::AcqRel);
                arrivals.notify.notify_one();
            }
        }
        if !caught_up {
            caught_up = true;
            arrivals.ready.fetch_add(1, Ordering::AcqRel);
            arrivals.notify.notify_one();
        }
    }
    Ok(())
}

async fn wait_for(arrivals: &Arrivals, done: impl Fn() -> bool, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("timed out waiting for {what}");
        }
        let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), arrivals.notify.notified()).await;
    }
    Ok(())
}

/// One run: fresh store, `pullers` live pulls, `rounds` pushes; the latency of each round.
async fn run(base: &str, pullers: usize, rounds: usize, tag: &str) -> Result<Vec<f64>> {
    let store_id = format!("fanout-native-{tag}");
    let ws_base = base.replacen("http", "ws", 1);
    let url = sync_url(ws_base.trim_end_matches('/'), &store_id, TOKEN);
    let arrivals = Arc::new(Arrivals {
        counts: (0..=rounds).map(|_| AtomicUsize::new(0)).collect(),
        ready: AtomicUsize::new(0),
        notify: Notify::new(),
    });
    let mut tasks = Vec::with_capacity(pullers);
    for _ in 0..pullers {
        let (url, store_id, arrivals) = (url.clone(), store_id.clone(), arrivals.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = puller(url, store_id, arrivals).await {
                eprintln!("a puller failed: {e:#}");
            }
        }));
    }
    wait_for(&arrivals, || arrivals.ready.load(Ordering::Acquire) == pullers, "every puller to catch up").await?;
    let (mut pusher, _) = tokio_tungstenite::connect_async(url).await.context("pusher connect")?;
    let mut latencies = Vec::with_capacity(rounds);
    for seq in 1..=rounds {
        let push = push_request(&seq.to_string(), &store_id, vec![event(seq as i64, seq as i64 - 1)], None);
        let started = Instant::now();
        pusher.send(Message::text(push.to_string())).await?;
        wait_for(&arrivals, || arrivals.counts[seq].load(Ordering::Acquire) == pullers, "a round").await?;
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
        // The push's ack, before the next round.
        while let Some(msg) = pusher.next().await {
            let Message::Text(text) = msg? else { continue };
            let frame: Value = serde_json::from_str(text.as_str())?;
            if frame["_tag"] == "Exit" {
                if frame["exit"]["_tag"] != "Success" {
                    bail!("push {seq} failed: {frame}");
                }
                break;
            }
        }
    }
    for task in tasks {
        task.abort();
    }
    Ok(latencies)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let (base, [pullers, rounds, runs], tag) = url_and_counts([1000, 30, 3]);
    let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let mut latencies = run(&base, pullers, rounds, &format!("{tag}-{i}")).await?;
        latencies.sort_by(|a, b| a.total_cmp(b));
        p50s.push(percentile(&latencies, 50.0));
        p99s.push(percentile(&latencies, 99.0));
    }
    println!(
        "{}",
        json!({ "scenario": "fanout-native", "pullers": pullers, "rounds": rounds, "runs": runs,
            "p50Ms": median(&mut p50s), "p99Ms": median(&mut p99s) })
    );
    Ok(())
}
