//! A bare tokio-tungstenite echo over loopback: the floor for one request/response round trip.
//! Usage: ws_echo [messages] [bytes]

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use livestore_sync_bench::percentile;
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (messages, bytes) = (*args.first().unwrap_or(&10_000), *args.get(1).unwrap_or(&300));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}")).await?;
    let payload = "x".repeat(bytes);
    let mut rtts = Vec::with_capacity(messages);
    let started = Instant::now();
    for _ in 0..messages {
        let t = Instant::now();
        ws.send(Message::text(payload.clone())).await?;
        while let Some(msg) = ws.next().await {
            if msg?.is_text() {
                break;
            }
        }
        rtts.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let total = started.elapsed().as_secs_f64();
    rtts.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{}",
        serde_json::json!({ "baseline": "ws-echo", "messages": messages, "bytes": bytes,
            "roundTripsPerSec": messages as f64 / total, "p50Ms": percentile(&rtts, 50.0), "p99Ms": percentile(&rtts, 99.0) })
    );
    Ok(())
}
