//! Many stores with a native client: N stores pushed concurrently, K sequential one-event
//! pushes each (connect included), as `scenarios.mjs many-stores` does, but in Rust, so that a
//! Node process encoding and parsing every frame is not what the figure measures.
//! Usage: many_stores_native URL [stores] [pushes] [runs]

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use livestore_sync_bench::{median, url_and_counts};
use livestore_sync_tests::{event, push_request, sync_url, TOKEN};
use serde_json::{json, Value};
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Connect to `store_id` and push `pushes` events one at a time, each after the last's ack.
async fn pusher(url: String, store_id: String, pushes: usize) -> Result<usize> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.context("connect")?;
    for seq in 1..=pushes {
        let push = push_request(&seq.to_string(), &store_id, vec![event(seq as i64, seq as i64 - 1)], None);
        ws.send(Message::text(push.to_string())).await?;
        loop {
            let Some(msg) = ws.next().await else { bail!("store {store_id}: closed before push {seq}'s ack") };
            let Message::Text(text) = msg? else { continue };
            let frame: Value = serde_json::from_str(text.as_str())?;
            if frame["_tag"] == "Exit" && frame["requestId"] == seq.to_string().as_str() {
                if frame["exit"]["_tag"] != "Success" {
                    bail!("store {store_id}: push {seq} failed: {frame}");
                }
                break;
            }
        }
    }
    let _ = ws.close(None).await;
    Ok(pushes)
}

/// One run on fresh stores: acknowledged pushes per second.
async fn run(base: &str, stores: usize, pushes: usize, tag: &str) -> Result<f64> {
    let ws_base = base.replacen("http", "ws", 1);
    let started = Instant::now();
    let tasks: Vec<_> = (0..stores)
        .map(|s| {
            let store_id = format!("many-native-{tag}-{s}");
            let url = sync_url(ws_base.trim_end_matches('/'), &store_id, TOKEN);
            tokio::spawn(pusher(url, store_id, pushes))
        })
        .collect();
    let mut acked = 0;
    for task in tasks {
        acked += task.await.context("a pusher panicked")??;
    }
    Ok(acked as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let (base, [stores, pushes, runs], tag) = url_and_counts([1000, 10, 3]);
    let mut rates = Vec::with_capacity(runs);
    for i in 0..runs {
        rates.push(run(&base, stores, pushes, &format!("{tag}-{i}")).await?);
    }
    println!(
        "{}",
        json!({ "scenario": "many-stores-native", "stores": stores, "pushes": pushes, "runs": runs,
            "pushesPerSec": median(&mut rates) })
    );
    Ok(())
}
