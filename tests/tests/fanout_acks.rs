//! The Acks of caught-up live pulls are dropped by the host before they reach the component
//! (`connections.set-ignored-frames`), so a broadcast to many pullers does not bring back one
//! component call per puller. Its own test binary: the frame counters it reads are
//! process-wide, and no other test may move them meanwhile.

use anyhow::{Context, Result};
use livestore_sync_tests::{chain, http_request, pull_request, unique_store, TestServer};

/// Component calls for client frames so far (`livestore_sync_frame_handle_seconds_count`).
async fn frames_handled(server: &TestServer) -> Result<f64> {
    let (status, raw) =
        http_request(server.addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    anyhow::ensure!(status == 200, "{raw}");
    let line = raw
        .lines()
        .find(|l| l.starts_with("livestore_sync_frame_handle_seconds_count "))
        .context("no frame-handle count in /metrics")?;
    Ok(line.rsplit(' ').next().unwrap_or_default().parse()?)
}

/// The count once it stops moving: the host records a frame after the component's call
/// returns, which can be just after the client got that call's answer.
async fn settled(server: &TestServer) -> Result<f64> {
    let mut last = frames_handled(server).await?;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let now = frames_handled(server).await?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_of_broadcasts_to_caught_up_live_pulls_never_reach_the_component() -> Result<()> {
    let mut server = TestServer::start().await?;
    let store = unique_store("acks");
    let mut puller = server.connect(&store).await?;
    let mut pusher = server.connect(&store).await?;
    puller.send(&pull_request("1", &store, None, true)).await?;
    puller.recv().await?;
    // This Ack completes the catch-up: it must be handled.
    puller.send_text(r#"{"_tag":"Ack","requestId":"1"}"#).await?;
    puller.assert_quiet(&store).await?;
    pusher.push(&store, chain(1, 1), None).await?;
    let broadcast = puller.recv().await?;
    assert_eq!(broadcast["_tag"], "Chunk", "{broadcast}");

    let before = settled(&server).await?;
    for _ in 0..3 {
        puller.send_text(r#"{"_tag":"Ack","requestId":"1"}"#).await?;
    }
    // An empty push is answered after everything this connection sent before it.
    puller.assert_quiet(&store).await?;
    assert_eq!(settled(&server).await? - before, 1.0, "only the empty push reached the component");

    // The same Ack written another way is not on the list: it is handled (as a no-op).
    puller.send_text(r#"{"_tag": "Ack", "requestId": "1"}"#).await?;
    puller.assert_quiet(&store).await?;
    assert_eq!(settled(&server).await? - before, 3.0);

    // Broadcasts still arrive after the dropped Acks.
    pusher.push(&store, chain(2, 2), None).await?;
    assert_eq!(puller.recv().await?["_tag"], "Chunk");
    server.stop().await?;
    Ok(())
}
