//! The raw-frame conformance suite: the LiveStore WebSocket protocol of `@livestore/sync-cf`
//! 0.4.0 and the sequencing invariants (seqNums never gap or repeat), over real sockets. Every
//! case takes an [`Endpoint`], so the same suite runs against every home: the native server
//! (`tests/ws_protocol.rs`, a test per case) and the worker on DO SQLite and on D1
//! (`tests/cloudflare.rs`).

use crate::*;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// A running home's address; cases use unique store ids, so they can share one.
pub struct Endpoint {
    pub addr: SocketAddr,
}

impl Endpoint {
    pub fn ws_base(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The URL the real client builds: payload JSON encoded twice.
    pub fn sync_url(&self, store_id: &str, token: &str) -> String {
        sync_url(&self.ws_base(), store_id, token)
    }

    pub async fn connect(&self, store_id: &str) -> Result<WsClient> {
        WsClient::connect(&self.sync_url(store_id, TOKEN)).await
    }
}

/// Calls `$m!(case, case, …)` with every case of the suite, the one list of them.
#[macro_export]
macro_rules! for_each_conformance_case {
    ($m:ident) => {
        $m!(
            ping_gets_pong_and_push_then_pull_returns_the_events,
            empty_store_pull_is_one_empty_chunk_and_empty_push_succeeds,
            a_250_event_pull_comes_in_100_100_50_chunks_each_waiting_for_its_ack,
            a_live_puller_gets_another_clients_push_before_the_push_is_acked,
            a_live_pull_catching_up_gets_later_pushes_in_order_exactly_once,
            server_ahead_error_when_the_parent_is_behind_or_ahead,
            backend_id_mismatch_on_push_and_on_pull,
            a_batch_repeating_a_seq_num_is_rejected_whole_and_the_store_keeps_working,
            a_batch_with_a_broken_parent_chain_is_rejected,
            seq_nums_past_javascript_safe_integers_are_rejected_whole,
            a_connection_runs_at_most_16_pulls,
            stores_whose_ids_differ_only_in_dash_and_underscore_are_independent,
            a_finished_non_live_pull_gets_no_broadcasts,
            an_interrupted_live_pull_stops_receiving,
            defects_for_unknown_tags_bad_json_and_non_string_ids,
            a_frame_naming_another_store_is_rejected,
            a_bad_or_missing_token_is_refused_with_400_and_no_socket,
            http_edges_info_426_and_unknown_paths
        );
    };
}

macro_rules! define_run_all {
    ($($case:ident),*) => {
        /// Every case in order against one home, each failure naming its case.
        pub async fn run_all(server: &Endpoint) -> Result<()> {
            $( $case(server).await.with_context(|| stringify!($case))?; )*
            Ok(())
        }
    };
}
for_each_conformance_case!(define_run_all);

pub async fn ping_gets_pong_and_push_then_pull_returns_the_events(server: &Endpoint) -> Result<()> {
    let store = unique_store("basic");
    let mut c = server.connect(&store).await?;
    c.send_text(r#"{"_tag":"Ping"}"#).await?;
    assert_eq!(c.recv().await?, json!({ "_tag": "Pong" }));

    let (id, push_ack) = c.push(&store, chain(1, 2), None).await?;
    assert_eq!(push_ack, json!({ "_tag": "Exit", "requestId": id, "exit": { "_tag": "Success", "value": {} } }));

    let pid = c.id();
    c.send(&pull_request(&pid, &store, None, false)).await?;
    let chunk = c.recv().await?;
    assert_eq!(chunk["_tag"], "Chunk");
    assert_eq!(chunk["requestId"], pid.as_str());
    let response = &chunk["values"][0];
    assert_eq!(seq_nums(response), vec![1, 2]);
    assert_eq!(response["pageInfo"], json!({ "_tag": "NoMore" }));
    let backend = response["backendId"].as_str().unwrap_or_default();
    assert_eq!(backend.len(), 21, "backend id is a nanoid: {response}");
    let item = &response["batch"][0];
    assert_eq!(item["eventEncoded"], event(1, 0));
    assert_eq!(item["metadata"]["_tag"], "Some");
    assert_eq!(item["metadata"]["value"]["_tag"], "SyncMessage.SyncMetadata");
    let created = item["metadata"]["value"]["createdAt"].as_str().unwrap_or_default();
    assert!(created.ends_with('Z') && created.len() == 24, "ISO createdAt: {created}");
    // The Exit waits for the Ack.
    c.assert_quiet(&store).await?;
    c.send(&ack(&pid)).await?;
    assert_eq!(c.recv().await?, json!({ "_tag": "Exit", "requestId": pid, "exit": { "_tag": "Success" } }));

    // Pull with a cursor returns only later events.
    let responses = c.pull_all(&store, Some((backend, 1))).await?;
    assert_eq!(responses.iter().flat_map(seq_nums).collect::<Vec<_>>(), vec![2]);
    Ok(())
}

pub async fn empty_store_pull_is_one_empty_chunk_and_empty_push_succeeds(server: &Endpoint) -> Result<()> {
    let store = unique_store("empty");
    let mut c = server.connect(&store).await?;
    let responses = c.pull_all(&store, None).await?;
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0]["batch"], json!([]));
    assert_eq!(responses[0]["pageInfo"], json!({ "_tag": "NoMore" }));
    let (_, ack) = c.push(&store, vec![], Some("whatever")).await?;
    assert!(is_push_ack(&ack), "{ack}");
    Ok(())
}

pub async fn a_250_event_pull_comes_in_100_100_50_chunks_each_waiting_for_its_ack(server: &Endpoint) -> Result<()> {
    let store = unique_store("big");
    let mut c = server.connect(&store).await?;
    for start in [1, 101, 201] {
        let (_, ack) = c.push(&store, chain(start, start + 99.min(250 - start)), None).await?;
        assert!(is_push_ack(&ack), "{ack}");
    }
    let id = c.id();
    c.send(&pull_request(&id, &store, None, false)).await?;
    let mut sizes = Vec::new();
    let mut infos = Vec::new();
    let mut all = Vec::new();
    for _ in 0..3 {
        let chunk = c.recv().await?;
        assert_eq!(chunk["_tag"], "Chunk", "{chunk}");
        let r = &chunk["values"][0];
        sizes.push(seq_nums(r).len());
        infos.push(r["pageInfo"].clone());
        all.extend(seq_nums(r));
        c.assert_quiet(&store).await?; // nothing may arrive before the Ack
        c.send(&ack(&id)).await?;
    }
    assert_eq!(sizes, vec![100, 100, 50]);
    assert_eq!(
        infos,
        vec![
            json!({ "_tag": "MoreKnown", "remaining": 150 }),
            json!({ "_tag": "MoreKnown", "remaining": 50 }),
            json!({ "_tag": "NoMore" })
        ]
    );
    assert_eq!(all, (1..=250).collect::<Vec<_>>());
    assert_eq!(c.recv().await?["exit"]["_tag"], "Success");
    Ok(())
}

pub async fn a_live_puller_gets_another_clients_push_before_the_push_is_acked(server: &Endpoint) -> Result<()> {
    let store = unique_store("live");
    let mut live = server.connect(&store).await?;
    let mut pusher = server.connect(&store).await?;
    let lid = live.id();
    live.send(&pull_request(&lid, &store, None, true)).await?;
    let first = live.recv().await?;
    assert_eq!(first["values"][0]["batch"], json!([]));
    live.send(&ack(&lid)).await?;
    // A live pull never Exits on its own.
    live.assert_quiet(&store).await?;

    // The pusher also has a live pull on its own socket: there, order is observable on one
    // connection — the broadcast chunk must precede the push's Exit.
    let own = "own-live";
    pusher.send(&pull_request(own, &store, None, true)).await?;
    pusher.recv().await?;
    pusher.send(&ack(own)).await?;
    let pid = "push-1";
    pusher.send(&push_request(pid, &store, chain(1, 2), None)).await?;
    let f1 = pusher.recv().await?;
    let f2 = pusher.recv().await?;
    assert_eq!((f1["_tag"].as_str(), f1["requestId"].as_str()), (Some("Chunk"), Some(own)), "{f1}");
    assert_eq!(seq_nums(&f1["values"][0]), vec![1, 2]);
    assert!(is_push_ack(&f2) && f2["requestId"] == pid, "{f2}");

    let chunk = live.recv().await?;
    assert_eq!(chunk["requestId"], lid.as_str());
    assert_eq!(seq_nums(&chunk["values"][0]), vec![1, 2]);
    assert_eq!(chunk["values"][0]["pageInfo"], json!({ "_tag": "NoMore" }));
    // Broadcasts do not wait for Acks.
    let (_, ack2) = pusher.push(&store, chain(3, 3), None).await?;
    assert!(is_push_ack(&ack2));
    assert_eq!(seq_nums(&live.recv().await?["values"][0]), vec![3]);
    Ok(())
}

pub async fn a_live_pull_catching_up_gets_later_pushes_in_order_exactly_once(server: &Endpoint) -> Result<()> {
    let store = unique_store("catchup");
    let mut c = server.connect(&store).await?;
    c.push(&store, chain(1, 150), None).await?;
    let mut live = server.connect(&store).await?;
    let lid = live.id();
    live.send(&pull_request(&lid, &store, None, true)).await?;
    let first = live.recv().await?;
    assert_eq!(seq_nums(&first["values"][0]).len(), 100);
    // Push while the live pull is mid catch-up: it must come through the stream, in order.
    c.push(&store, chain(151, 160), None).await?;
    live.send(&ack(&lid)).await?;
    let second = live.recv().await?;
    assert_eq!(seq_nums(&second["values"][0]), (101..=160).collect::<Vec<_>>());
    assert_eq!(second["values"][0]["pageInfo"], json!({ "_tag": "NoMore" }));
    live.send(&ack(&lid)).await?;
    c.push(&store, chain(161, 161), None).await?;
    assert_eq!(seq_nums(&live.recv().await?["values"][0]), vec![161]);
    live.assert_quiet(&store).await?;
    Ok(())
}

pub async fn server_ahead_error_when_the_parent_is_behind_or_ahead(server: &Endpoint) -> Result<()> {
    let store = unique_store("ahead");
    let mut c = server.connect(&store).await?;
    c.push(&store, chain(1, 3), None).await?;
    let (_, behind) = c.push(&store, vec![event(2, 1)], None).await?;
    assert_eq!(
        failure_error(&behind),
        Some(&json!({ "minimumExpectedNum": 3, "providedNum": 1, "_tag": "ServerAheadError" }))
    );
    let (_, ahead) = c.push(&store, vec![event(9, 8)], None).await?;
    assert_eq!(
        failure_error(&ahead),
        Some(&json!({ "minimumExpectedNum": 3, "providedNum": 8, "_tag": "ServerAheadError" }))
    );
    let (seqs, _) = c.pull_seq_nums(&store).await?;
    assert_eq!(seqs, vec![1, 2, 3]);
    Ok(())
}

pub async fn backend_id_mismatch_on_push_and_on_pull(server: &Endpoint) -> Result<()> {
    let store = unique_store("backend");
    let mut c = server.connect(&store).await?;
    c.push(&store, chain(1, 1), None).await?;
    let (_, backend) = c.pull_seq_nums(&store).await?;
    let (_, push) = c.push(&store, chain(2, 2), Some("not-the-backend-id")).await?;
    assert_eq!(
        failure_error(&push),
        Some(&json!({ "expected": backend, "received": "not-the-backend-id", "_tag": "BackendIdMismatchError" }))
    );
    let id = c.id();
    c.send(&pull_request(&id, &store, Some(("not-the-backend-id", 1)), false)).await?;
    let pull = c.recv().await?;
    assert_eq!(
        failure_error(&pull),
        Some(&json!({ "expected": backend, "received": "not-the-backend-id", "_tag": "BackendIdMismatchError" }))
    );
    // The right backend id is accepted.
    let (_, ok) = c.push(&store, chain(2, 2), Some(&backend)).await?;
    assert!(is_push_ack(&ok), "{ok}");
    Ok(())
}

pub async fn a_batch_repeating_a_seq_num_is_rejected_whole_and_the_store_keeps_working(
    server: &Endpoint,
) -> Result<()> {
    let store = unique_store("atomic");
    let mut c = server.connect(&store).await?;
    let mut batch = chain(1, 20);
    batch[15] = event(3, 15); // the 16th event repeats seqNum 3
    let (_, rejected) = c.push(&store, batch, None).await?;
    let error = failure_error(&rejected).cloned().unwrap_or(Value::Null);
    assert_eq!(error["_tag"], "UnknownError", "{rejected}");
    assert!(error["cause"]["message"].as_str().unwrap_or_default().contains("seqNum 3"), "{error}");
    let (seqs, _) = c.pull_seq_nums(&store).await?;
    assert!(seqs.is_empty(), "nothing stored: {seqs:?}");
    let (_, ok) = c.push(&store, chain(1, 20), None).await?;
    assert!(is_push_ack(&ok), "{ok}");
    assert_eq!(c.pull_seq_nums(&store).await?.0, (1..=20).collect::<Vec<_>>());
    Ok(())
}

pub async fn a_batch_with_a_broken_parent_chain_is_rejected(server: &Endpoint) -> Result<()> {
    let store = unique_store("chain");
    let mut c = server.connect(&store).await?;
    c.push(&store, chain(1, 3), None).await?;
    // The reference accepts this (only batch[0] is checked); we do not.
    let batch = vec![event(4, 3), event(20, 4), event(15, 99)];
    let (_, rejected) = c.push(&store, batch, None).await?;
    let error = failure_error(&rejected).cloned().unwrap_or(Value::Null);
    assert_eq!(error["_tag"], "UnknownError", "{rejected}");
    assert!(error["cause"]["message"].as_str().unwrap_or_default().contains("parentSeqNum 99"), "{error}");
    let (_, jump) = c.push(&store, vec![event(4, 3), event(4, 4)], None).await?;
    assert_eq!(failure_error(&jump).map(|e| e["_tag"].clone()), Some(json!("UnknownError")));
    assert_eq!(c.pull_seq_nums(&store).await?.0, vec![1, 2, 3]);
    Ok(())
}

/// seqNums are JavaScript numbers in LiveStore: past 2^53 − 1 a client cannot even hold them.
pub async fn seq_nums_past_javascript_safe_integers_are_rejected_whole(server: &Endpoint) -> Result<()> {
    let store = unique_store("safe-int");
    let mut c = server.connect(&store).await?;
    let max_safe = (1_i64 << 53) - 1;
    for batch in [vec![event(1, 0), event(i64::MAX, 1)], vec![event(max_safe + 1, 0)]] {
        let (_, rejected) = c.push(&store, batch, None).await?;
        let error = failure_error(&rejected).cloned().unwrap_or(Value::Null);
        assert_eq!(error["cause"]["name"], "InvalidBatchError", "{rejected}");
    }
    assert!(c.pull_seq_nums(&store).await?.0.is_empty(), "nothing stored");
    let (_, ok) = c.push(&store, vec![event(max_safe, 0)], None).await?;
    assert!(is_push_ack(&ok), "the largest safe seqNum is fine: {ok}");
    Ok(())
}

/// Pulls past the per-connection cap fail with `TooManyPullsError`; interrupting one frees a place.
pub async fn a_connection_runs_at_most_16_pulls(server: &Endpoint) -> Result<()> {
    let store = unique_store("pull-cap");
    let mut c = server.connect(&store).await?;
    for i in 0..16 {
        c.send(&pull_request(&format!("p{i}"), &store, None, true)).await?;
        assert_eq!(c.recv().await?["_tag"], "Chunk");
    }
    c.send(&pull_request("p16", &store, None, true)).await?;
    let refused = c.recv().await?;
    assert_eq!(
        failure_error(&refused).map(|e| e["cause"]["name"].clone()),
        Some(json!("TooManyPullsError")),
        "{refused}"
    );
    c.send(&interrupt("p0")).await?;
    c.recv().await?;
    c.send(&pull_request("p17", &store, None, true)).await?;
    assert_eq!(c.recv().await?["_tag"], "Chunk");
    Ok(())
}

pub async fn stores_whose_ids_differ_only_in_dash_and_underscore_are_independent(server: &Endpoint) -> Result<()> {
    let suffix = unique_store("x").replace('-', "");
    let (dash, under) = (format!("a-b{suffix}"), format!("a_b{suffix}"));
    let mut d = server.connect(&dash).await?;
    let mut u = server.connect(&under).await?;
    d.push(&dash, chain(1, 2), None).await?;
    u.push(&under, chain(1, 5), None).await?;
    assert_eq!(d.pull_seq_nums(&dash).await?.0, vec![1, 2]);
    let (useqs, ubackend) = u.pull_seq_nums(&under).await?;
    assert_eq!(useqs, vec![1, 2, 3, 4, 5]);
    assert_ne!(d.pull_seq_nums(&dash).await?.1, ubackend);
    Ok(())
}

pub async fn a_finished_non_live_pull_gets_no_broadcasts(server: &Endpoint) -> Result<()> {
    let store = unique_store("finished");
    let mut c = server.connect(&store).await?;
    c.push(&store, chain(1, 1), None).await?;
    c.pull_all(&store, None).await?;
    let (id, ack) = c.push(&store, chain(2, 2), None).await?;
    // `@livestore/sync-cf` would send a Chunk for the finished pull first.
    assert!(is_push_ack(&ack) && ack["requestId"] == id.as_str(), "first frame must be the ack: {ack}");
    c.assert_quiet(&store).await?;
    Ok(())
}

pub async fn an_interrupted_live_pull_stops_receiving(server: &Endpoint) -> Result<()> {
    let store = unique_store("interrupt");
    let mut live = server.connect(&store).await?;
    let mut pusher = server.connect(&store).await?;
    let lid = live.id();
    live.send(&pull_request(&lid, &store, None, true)).await?;
    live.recv().await?;
    live.send(&ack(&lid)).await?;
    pusher.push(&store, chain(1, 1), None).await?;
    assert_eq!(seq_nums(&live.recv().await?["values"][0]), vec![1]);
    live.send(&interrupt(&lid)).await?;
    let exit = live.recv().await?;
    assert_eq!(exit["_tag"], "Exit");
    assert_eq!(exit["requestId"], lid.as_str());
    assert_eq!(exit["exit"]["_tag"], "Failure");
    assert_eq!(exit["exit"]["cause"]["_tag"], "Interrupt");
    pusher.push(&store, chain(2, 2), None).await?;
    live.assert_quiet(&store).await?;
    // The connection stays usable.
    live.send_text(r#"{"_tag":"Ping"}"#).await?;
    assert_eq!(live.recv().await?, json!({ "_tag": "Pong" }));
    Ok(())
}

pub async fn defects_for_unknown_tags_bad_json_and_non_string_ids(server: &Endpoint) -> Result<()> {
    let store = unique_store("defect");
    let mut c = server.connect(&store).await?;
    c.send(&json!({ "_tag": "Request", "id": "1", "tag": "SyncWsRpc.Nope", "payload": {}, "headers": [] })).await?;
    assert_eq!(c.recv().await?, json!({ "_tag": "Defect", "defect": "Unknown request tag: SyncWsRpc.Nope" }));
    c.send(&json!({ "_tag": "Request", "id": 902, "tag": "SyncWsRpc.Pull", "payload": {} })).await?;
    assert_eq!(c.recv().await?, json!({ "_tag": "Defect", "defect": "Invalid request id: 902" }));
    c.send_text("{this is not json").await?;
    let bad = c.recv().await?;
    assert_eq!(bad["_tag"], "Defect");
    assert!(bad["defect"].as_str().unwrap_or_default().starts_with("Invalid message"), "{bad}");
    c.send(&json!({ "_tag": "Frobnicate" })).await?;
    assert_eq!(c.recv().await?["_tag"], "Defect");
    // A payload that violates the schema fails that request only.
    c.send(&json!({ "_tag": "Request", "id": "7", "tag": "SyncWsRpc.Push", "payload": { "storeId": store, "batch": [{ "name": 1 }] } }))
        .await?;
    let die = c.recv().await?;
    assert_eq!(die["requestId"], "7");
    assert_eq!(die["exit"]["cause"]["_tag"], "Die", "{die}");
    c.send_text(r#"{"_tag":"Ping"}"#).await?;
    assert_eq!(c.recv().await?, json!({ "_tag": "Pong" }));
    Ok(())
}

pub async fn a_frame_naming_another_store_is_rejected(server: &Endpoint) -> Result<()> {
    let store = unique_store("mine");
    let other = unique_store("theirs");
    let mut c = server.connect(&store).await?;
    let (_, rejected) = c.push(&other, chain(1, 1), None).await?;
    assert_eq!(failure_error(&rejected).map(|e| e["_tag"].clone()), Some(json!("UnknownError")), "{rejected}");
    let mut o = server.connect(&other).await?;
    assert!(o.pull_seq_nums(&other).await?.0.is_empty());
    assert!(c.pull_seq_nums(&store).await?.0.is_empty());
    Ok(())
}

pub async fn a_bad_or_missing_token_is_refused_with_400_and_no_socket(server: &Endpoint) -> Result<()> {
    let store = unique_store("auth");
    for url in [server.sync_url(&store, "nope"), format!("{}/?storeId={store}&transport=ws", server.ws_base())] {
        match tokio_tungstenite::connect_async(&url).await {
            Ok(_) => panic!("{url} must be refused"),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status().as_u16(), 400),
            Err(e) => panic!("unexpected error {e}"),
        }
        let path = url.split_once(&server.ws_base()).map_or("/", |(_, p)| p).to_string();
        let (status, body) = http_request(server.addr, &upgrade_request(&path)).await?;
        assert!(status == 400 && body.contains("Invalid auth token"), "{status}: {body}");
    }
    // The single-encoded payload and any path are accepted.
    let single = format!(
        "{}/any/path?storeId={store}&payload={}&transport=ws",
        server.ws_base(),
        urlencode(&json!({ "authToken": TOKEN }).to_string())
    );
    let mut c = WsClient::connect(&single).await?;
    c.send_text(r#"{"_tag":"Ping"}"#).await?;
    assert_eq!(c.recv().await?, json!({ "_tag": "Pong" }));
    Ok(())
}

/// `/` and `/health` answer GET and HEAD (other methods 405), unknown paths 404, an unknown
/// `transport` 400 (it must not silently become the simple protocol).
pub async fn http_edges_info_426_and_unknown_paths(server: &Endpoint) -> Result<()> {
    let (status, body) = http_request(server.addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    assert_eq!(status, 200);
    assert!(body.contains("Info:"), "{body}");
    let req = "GET /?storeId=s1&transport=ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (status, body) = http_request(server.addr, req).await?;
    assert_eq!(status, 426, "{body}");
    let (status, _) =
        http_request(server.addr, "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    assert_eq!(status, 404);
    let (status, body) =
        http_request(server.addr, "GET /?storeId=s1&transport=wss HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
    assert!(status == 400 && body.contains("Unknown transport \"wss\""), "{status} {body}");
    let (status, body) =
        http_request(server.addr, "HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    assert_eq!(status, 200, "{body}");
    let (status, _) =
        http_request(server.addr, "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await?;
    assert_eq!(status, 405);
    Ok(())
}
