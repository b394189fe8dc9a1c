//! The protocol's rules, in process and deterministic: a `MemHost` with a settable clock and
//! counter randomness stands in for storage, sockets, time and entropy, so "nothing arrives"
//! is an empty frame list rather than a timed wait.

use crate::mem_host::{MemHost, MEM_HOST_EPOCH_MILLIS};
use crate::{Protocol, StoreSync};
use serde_json::{json, Value};

const STORE: &str = "s";

struct World {
    host: MemHost,
    sync: StoreSync,
}

impl World {
    fn new() -> World {
        let mut host = MemHost::default();
        let sync = StoreSync::open(&mut host, STORE).expect("open");
        World { host, sync }
    }

    fn connect(&mut self, conn: u64, protocol: Protocol) {
        self.sync.connection_opened(conn, protocol, true, Some(format!("client-{conn}")));
    }

    fn send(&mut self, conn: u64, frame: Value) {
        self.sync.frame(&mut self.host, conn, &frame.to_string());
    }

    /// A frame as a host that honours `set-ignored-frames` delivers it: dropped unread when
    /// it is on the connection's list, otherwise handled and followed by the end-of-call
    /// declarations. Whether it was handled.
    fn deliver(&mut self, conn: u64, frame: Value) -> bool {
        self.deliver_text(conn, &frame.to_string())
    }

    fn deliver_text(&mut self, conn: u64, text: &str) -> bool {
        if self.host.ignored.get(&conn).is_some_and(|list| list.iter().any(|f| f == text)) {
            return false;
        }
        self.sync.frame(&mut self.host, conn, text);
        self.sync.save_snapshot(&mut self.host, conn);
        true
    }

    /// Every frame sent since the last call, in order, as (conn, frame).
    fn sent(&mut self) -> Vec<(u64, Value)> {
        let sent = std::mem::take(&mut self.host.sent);
        sent.into_iter().map(|(c, f)| (c, serde_json::from_str(&f).expect("frames are JSON"))).collect()
    }

    /// The frames sent to `conn` since the last call (frames to others are dropped).
    fn to(&mut self, conn: u64) -> Vec<Value> {
        self.sent().into_iter().filter(|(c, _)| *c == conn).map(|(_, f)| f).collect()
    }

    fn backend_id(&self) -> String {
        self.host.stores[STORE].backend_id.clone()
    }
}

fn events(from: i64, to: i64) -> Vec<Value> {
    (from..=to)
        .map(|s| json!({ "name": "e", "args": { "n": s }, "seqNum": s, "parentSeqNum": s - 1, "clientId": "c", "sessionId": "cs" }))
        .collect()
}

fn push(id: &str, batch: Vec<Value>, backend_id: Option<&str>) -> Value {
    let backend = backend_id.map_or(json!({ "_tag": "None" }), |b| json!({ "_tag": "Some", "value": b }));
    json!({ "_tag": "Request", "id": id, "tag": "SyncWsRpc.Push", "payload": { "storeId": STORE, "batch": batch, "backendId": backend }, "headers": [] })
}

fn pull(id: &str, cursor: Option<(&str, i64)>, live: bool) -> Value {
    let cursor = cursor.map_or(
        json!({ "_tag": "None" }),
        |(b, n)| json!({ "_tag": "Some", "value": { "backendId": b, "eventSequenceNumber": n } }),
    );
    json!({ "_tag": "Request", "id": id, "tag": "SyncWsRpc.Pull", "payload": { "storeId": STORE, "cursor": cursor, "live": live }, "headers": [] })
}

fn ack(id: &str) -> Value {
    json!({ "_tag": "Ack", "requestId": id })
}

fn is_push_ack(f: &Value) -> bool {
    f["_tag"] == "Exit" && f["exit"] == json!({ "_tag": "Success", "value": {} })
}

fn chunk_seqs(f: &Value) -> Vec<i64> {
    f["values"][0]["batch"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["eventEncoded"]["seqNum"].as_i64())
        .collect()
}

fn error(f: &Value) -> &Value {
    &f["exit"]["cause"]["error"]
}

#[test]
fn catch_up_sends_one_chunk_per_ack_with_known_remaining_counts() {
    let mut w = World::new();
    w.connect(1, Protocol::LiveStore);
    w.send(1, push("p", events(1, 250), None));
    assert!(is_push_ack(&w.to(1)[0]));
    w.send(1, pull("q", None, false));
    let mut pages = Vec::new();
    for _ in 0..3 {
        let frames = w.to(1);
        assert_eq!(frames.len(), 1, "one chunk, then nothing until the Ack: {frames:?}");
        let chunk = &frames[0];
        pages.push((chunk_seqs(chunk).len(), chunk["values"][0]["pageInfo"].clone()));
        w.send(1, ack("q"));
    }
    assert_eq!(
        pages,
        vec![
            (100, json!({ "_tag": "MoreKnown", "remaining": 150 })),
            (100, json!({ "_tag": "MoreKnown", "remaining": 50 })),
            (50, json!({ "_tag": "NoMore" })),
        ]
    );
    assert_eq!(w.to(1), vec![json!({ "_tag": "Exit", "requestId": "q", "exit": { "_tag": "Success" } })]);
    // A second Ack for a finished stream is ignored.
    w.send(1, ack("q"));
    assert!(w.to(1).is_empty());
}

#[test]
fn live_pullers_get_a_batch_before_the_pusher_gets_its_ack() {
    let mut w = World::new();
    w.connect(1, Protocol::LiveStore);
    w.connect(2, Protocol::LiveStore);
    w.send(1, pull("live", None, true));
    assert_eq!(chunk_seqs(&w.to(1)[0]), Vec::<i64>::new());
    w.send(1, ack("live"));
    assert!(w.to(1).is_empty(), "a caught-up live pull waits quietly");
    w.send(2, push("p", events(1, 2), None));
    let order: Vec<(u64, bool)> = w.sent().iter().map(|(c, f)| (*c, is_push_ack(f))).collect();
    assert_eq!(order, vec![(1, false), (2, true)], "broadcast first, then the ack");
}

#[test]
fn only_acks_of_caught_up_live_pulls_may_be_dropped_and_a_reused_request_id_is_not() {
    let mut w = World::new();
    w.connect(1, Protocol::LiveStore);
    w.connect(2, Protocol::LiveStore);
    w.deliver(2, push("p", events(1, 150), None));
    w.sent();
    // A live pull catching up: its Acks move it, none may be dropped.
    assert!(w.deliver(1, pull("live", None, true)));
    assert_eq!(chunk_seqs(&w.to(1)[0]).len(), 100);
    assert!(w.deliver(1, ack("live")), "the catch-up needs this Ack");
    assert_eq!(chunk_seqs(&w.to(1)[0]), (101..=150).collect::<Vec<_>>());
    assert!(w.deliver(1, ack("live")), "the Ack of the last catch-up chunk still changes the stream");
    // Caught up and acknowledged: broadcasts' Acks are dropped unread, broadcasts still arrive.
    w.deliver(2, push("p2", events(151, 151), Some(&w.backend_id())));
    assert_eq!(chunk_seqs(&w.to(1)[0]), vec![151]);
    assert!(!w.deliver(1, ack("live")), "a broadcast's Ack is on the list");
    // Other frames are never dropped, nor an Ack written differently.
    assert!(w.deliver_text(1, r#"{"requestId":"live","_tag":"Ack"}"#));
    assert!(w.deliver_text(1, r#"{"_tag": "Ack", "requestId": "live"}"#));
    // The stream ends: its Ack leaves the list in the same call, so a new pull reusing the
    // request id gets every Ack of its catch-up.
    assert!(w.deliver(1, json!({ "_tag": "Interrupt", "requestId": "live" })));
    assert_eq!(w.host.ignored[&1], Vec::<String>::new());
    w.sent();
    assert!(w.deliver(1, pull("live", None, true)));
    assert_eq!(chunk_seqs(&w.to(1)[0]).len(), 100);
    assert!(w.deliver(1, ack("live")));
    assert_eq!(chunk_seqs(&w.to(1)[0]), (101..=151).collect::<Vec<_>>());
    // A finite pull's Acks are never on the list.
    assert!(w.deliver(1, pull("once", None, false)));
    assert!(w.deliver(1, ack("once")));
    assert!(w.deliver(1, ack("once")));
    assert_eq!(w.to(1).last().map(|f| f["exit"]["_tag"].clone()), Some(json!("Success")));
}

#[test]
fn interrupted_and_finished_pulls_get_no_broadcasts() {
    let mut w = World::new();
    for conn in 1..=3 {
        w.connect(conn, Protocol::LiveStore);
    }
    w.send(1, pull("live", None, true));
    w.send(1, ack("live"));
    w.send(1, json!({ "_tag": "Interrupt", "requestId": "live" }));
    let interrupted = w.to(1);
    assert_eq!(interrupted.last().map(|f| f["exit"]["cause"]["_tag"].clone()), Some(json!("Interrupt")));
    w.send(2, pull("once", None, false));
    w.send(2, ack("once"));
    assert_eq!(w.to(2).last().map(|f| f["exit"]["_tag"].clone()), Some(json!("Success")));
    w.send(3, push("p", events(1, 1), None));
    let sent = w.sent();
    assert_eq!(sent.len(), 1, "only the pusher hears back: {sent:?}");
    assert_eq!(sent[0].0, 3);
}

#[test]
fn a_push_off_the_head_fails_with_server_ahead_either_way() {
    let mut w = World::new();
    w.connect(1, Protocol::LiveStore);
    w.send(1, push("a", events(1, 3), None));
    w.send(1, push("behind", events(2, 2), None));
    w.send(1, push("ahead", events(6, 6), None));
    let frames = w.to(1);
    assert!(is_push_ack(&frames[0]));
    assert_eq!(error(&frames[1]), &json!({ "minimumExpectedNum": 3, "providedNum": 1, "_tag": "ServerAheadError" }));
    assert_eq!(error(&frames[2]), &json!({ "minimumExpectedNum": 3, "providedNum": 5, "_tag": "ServerAheadError" }));
    assert_eq!(w.sync.head(), 3);
}

#[test]
fn another_backend_id_fails_pushes_and_pulls() {
    let mut w = World::new();
    w.connect(1, Protocol::LiveStore);
    let expected = w.backend_id();
    w.send(1, push("p", events(1, 1), Some("other")));
    w.send(1, pull("q", Some(("other", 1)), false));
    let mismatch = json!({ "expected": expected, "received": "other", "_tag": "BackendIdMismatchError" });
    let frames = w.to(1);
    assert_eq!(error(&frames[0]), &mismatch);
    assert_eq!(error(&frames[1]), &mismatch);
    assert_eq!(w.sync.head(), 0);
}

#[test]
fn a_broken_chain_is_rejected_whole() {
    let mut w = World::new();
    w.connect(1, Protocol::LiveStore);
    let mut batch = events(1, 3);
    batch[2]["parentSeqNum"] = json!(1);
    w.send(1, push("p", batch, None));
    let frames = w.to(1);
    assert_eq!(error(&frames[0])["cause"]["name"], "InvalidBatchError");
    assert_eq!(w.sync.head(), 0);
    assert!(w.host.stores[STORE].events.is_empty(), "nothing of a rejected batch is stored");
}

#[test]
fn simple_pushes_are_idempotent_by_event_id() {
    let mut w = World::new();
    w.connect(1, Protocol::Simple);
    w.connect(2, Protocol::Simple);
    let ev = |id: &str| json!({ "id": id, "type": "note", "data": { "id": id } });
    w.send(1, json!({ "type": "push", "events": [ev("a"), ev("b")] }));
    w.send(1, json!({ "type": "push", "events": [ev("a"), ev("c"), ev("c")] }));
    let acks: Vec<Value> = w.to(1);
    assert_eq!(acks[0], json!({ "type": "ack", "ids": ["a", "b"], "seqNums": [1, 2] }));
    assert_eq!(acks[1], json!({ "type": "ack", "ids": ["a", "c", "c"], "seqNums": [1, 3, 3] }));
    assert_eq!(w.host.stores[STORE].events.len(), 3);
    assert_eq!(w.sync.head(), 3);
}

#[test]
fn created_at_and_backend_ids_come_from_the_host() {
    let mut w = World::new();
    // Counter randomness 0, 1, 2, … picks the alphabet's first 21 characters.
    assert_eq!(w.backend_id(), "useandom-26T198340PX7");
    w.connect(1, Protocol::LiveStore);
    w.send(1, push("p", events(1, 1), None));
    w.host.now_millis = MEM_HOST_EPOCH_MILLIS + 1_000;
    w.send(1, push("p2", events(2, 2), None));
    w.to(1);
    w.send(1, pull("q", None, false));
    let chunk = &w.to(1)[0];
    let created: Vec<&str> = chunk["values"][0]["batch"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["value"]["createdAt"].as_str())
        .collect();
    assert_eq!(created, vec!["2026-11-26T18:53:10.284Z", "2026-11-26T18:53:11.284Z"]);
    assert_eq!(chunk["values"][0]["backendId"], "useandom-26T198340PX7");
}

#[test]
fn a_head_moved_by_another_writer_fails_the_push_with_the_new_head() {
    let mut w = World::new();
    w.connect(1, Protocol::LiveStore);
    w.send(1, push("a", events(1, 1), None));
    // Another node appends seqNum 2 behind this instance's back.
    let mut moved = w.host.stores[STORE].events[0].clone();
    (moved.seq_num, moved.parent_seq_num) = (2, 1);
    let store = w.host.stores.get_mut(STORE).expect("store");
    store.events.push(moved);
    store.head = 2;
    w.send(1, push("b", events(2, 2), None));
    w.send(1, push("c", events(3, 3), None));
    let frames = w.to(1);
    assert!(is_push_ack(&frames[0]));
    assert_eq!(error(&frames[1]), &json!({ "minimumExpectedNum": 2, "providedNum": 1, "_tag": "ServerAheadError" }));
    assert!(is_push_ack(&frames[2]), "the instance continues from the head it learned: {}", frames[2]);
    assert_eq!(w.sync.head(), 3);
}

#[test]
fn seq_nums_beyond_javascript_safe_integers_are_refused_and_nothing_is_stored() {
    let mut w = World::new();
    w.connect(1, Protocol::LiveStore);
    let max_safe = (1_i64 << 53) - 1;
    let huge = vec![
        json!({ "name": "e", "args": null, "seqNum": i64::MAX, "parentSeqNum": 0, "clientId": "c", "sessionId": "s" }),
    ];
    w.send(1, push("a", huge, None));
    let beyond = vec![
        json!({ "name": "e", "args": null, "seqNum": max_safe + 1, "parentSeqNum": 0, "clientId": "c", "sessionId": "s" }),
    ];
    w.send(1, push("b", beyond, None));
    let frames = w.to(1);
    for f in &frames {
        assert_eq!(error(f)["cause"]["name"], "InvalidBatchError", "{f}");
    }
    assert!(w.host.stores[STORE].events.is_empty());
    // The largest safe seqNum is taken; then the simple protocol cannot go past it.
    let last = vec![
        json!({ "name": "e", "args": null, "seqNum": max_safe, "parentSeqNum": 0, "clientId": "c", "sessionId": "s" }),
    ];
    w.send(1, push("c", last, None));
    assert!(is_push_ack(&w.to(1)[0]));
    w.connect(2, Protocol::Simple);
    w.send(2, json!({ "type": "push", "events": [{ "id": "x", "type": "note" }] }));
    assert_eq!(w.to(2)[0]["code"], "store_full");
    assert_eq!(w.sync.head(), max_safe);
    assert_eq!(w.host.stores[STORE].events.len(), 1);
}

#[test]
fn a_connection_runs_a_bounded_number_of_pulls() {
    let mut w = World::new();
    w.connect(1, Protocol::LiveStore);
    for i in 0..crate::pull::MAX_PULLS_PER_CONNECTION {
        w.send(1, pull(&format!("p{i}"), None, true));
    }
    assert_eq!(w.to(1).len(), crate::pull::MAX_PULLS_PER_CONNECTION);
    let max = u32::try_from(crate::pull::MAX_PULLS_PER_CONNECTION).expect("small");
    assert_eq!(w.sync.open_pulls(1), Some(max), "the admin API's count");
    assert_eq!(w.sync.open_pulls(2), None, "an unknown connection");
    w.send(1, pull("one-too-many", None, true));
    let refused = w.to(1);
    assert_eq!(error(&refused[0])["cause"]["name"], "TooManyPullsError", "{}", refused[0]);
    // Interrupting one frees a place.
    w.send(1, json!({ "_tag": "Interrupt", "requestId": "p0" }));
    assert_eq!(w.sync.open_pulls(1), Some(max - 1), "an interrupted pull is not counted");
    w.send(1, pull("again", None, true));
    let frames = w.to(1);
    assert_eq!(frames[1]["_tag"], "Chunk", "{}", frames[1]);
}

#[test]
fn stored_args_that_are_not_json_fail_the_pull_instead_of_the_frame() {
    let mut w = World::new();
    w.connect(1, Protocol::LiveStore);
    w.send(1, push("a", events(1, 2), None));
    w.to(1);
    w.host.stores.get_mut(STORE).expect("store").events[1].args = Some("{not json".into());
    w.send(1, pull("q", None, false));
    let frames = w.to(1);
    assert_eq!(frames.len(), 1);
    let message = error(&frames[0])["cause"]["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("event 2") && message.contains("not JSON"), "{message}");
    w.connect(2, Protocol::Simple);
    w.send(2, json!({ "type": "pull" }));
    assert_eq!(w.to(2)[0]["code"], "storage_error");
}

#[test]
fn a_pulled_event_pushed_again_over_the_simple_protocol_keeps_its_seq_num() {
    let mut w = World::new();
    w.connect(1, Protocol::LiveStore);
    w.send(1, push("a", events(1, 2), None));
    w.connect(2, Protocol::Simple);
    w.to(1);
    w.send(2, json!({ "type": "pull" }));
    let pulled = w.to(2).remove(0);
    let first = pulled["events"][0].clone();
    assert_eq!(first["id"], "seq-1");
    w.send(
        2,
        json!({ "type": "push", "events": [{ "id": first["id"], "type": first["type"], "data": first["data"] }] }),
    );
    assert_eq!(w.to(2)[0], json!({ "type": "ack", "ids": ["seq-1"], "seqNums": [1] }));
    assert_eq!(w.host.stores[STORE].events.len(), 2, "nothing stored twice");
    // A reported-form id that names no such event is refused rather than stored.
    w.send(2, json!({ "type": "push", "events": [{ "id": "seq-7", "type": "note" }] }));
    assert_eq!(w.to(2)[0]["code"], "invalid_message");
    assert_eq!(w.host.stores[STORE].events.len(), 2);
}

/// Another node commits to the same storage: its events reach this instance's live pulls in
/// order and once, whether the instance hears of them (`log-advanced`) or finds out by losing
/// a head race (then before the pusher's ServerAheadError, so a rebasing client finds them).
#[test]
fn events_another_node_committed_reach_live_pulls_once_in_order() {
    let mut w = World::new();
    w.connect(1, Protocol::LiveStore);
    w.connect(2, Protocol::LiveStore);
    w.send(1, pull("live", None, true));
    w.send(1, ack("live"));
    w.send(2, push("a", events(1, 1), None));
    w.sent();
    // Another node appends 2..=3 behind this instance's back, then notifies.
    appended_elsewhere(&mut w, 2, 3);
    w.sync.log_advanced(&mut w.host, 3);
    w.sync.log_advanced(&mut w.host, 3); // a repeated notification delivers nothing
    let frames = w.to(1);
    let seqs: Vec<i64> = frames.iter().flat_map(chunk_seqs).collect();
    assert_eq!(seqs, vec![2, 3], "{frames:?}");
    // Then 4..=5 without a notification: the next push here loses the race.
    appended_elsewhere(&mut w, 4, 5);
    w.send(2, push("b", events(4, 4), None));
    let sent = w.sent();
    let to_puller: Vec<i64> = sent.iter().filter(|(c, _)| *c == 1).flat_map(|(_, f)| chunk_seqs(f)).collect();
    assert_eq!(to_puller, vec![4, 5]);
    let to_pusher: Vec<&Value> = sent.iter().filter(|(c, _)| *c == 2).map(|(_, f)| f).collect();
    assert_eq!(error(to_pusher[0])["minimumExpectedNum"], 5, "{sent:?}");
    let order: Vec<u64> = sent.iter().map(|(c, _)| *c).collect();
    assert_eq!(order, vec![1, 2], "the puller hears of 4..=5 before the pusher's error");
    w.send(2, push("c", events(6, 6), None));
    assert_eq!(w.sync.head(), 6);
}

/// With several nodes, a catch-up read from storage can run past this instance's head: the
/// stream that read them does not get them again when the instance catches up, and a client
/// that pushes above the instance's head is judged against the stored head.
#[test]
fn events_read_ahead_of_the_instance_are_not_delivered_twice_and_pushes_above_its_head_are_judged_by_storage() {
    let mut w = World::new();
    w.connect(1, Protocol::LiveStore);
    w.connect(2, Protocol::LiveStore);
    w.send(1, push("a", events(1, 1), None));
    w.send(1, pull("early", None, true));
    w.send(1, ack("early"));
    // Another node appends 2..=3; its notice has not arrived yet.
    appended_elsewhere(&mut w, 2, 3);
    // A client connecting here now reads 1..=3 from storage and is caught up at 3.
    w.send(2, pull("late", None, true));
    w.send(2, ack("late"));
    let late: Vec<i64> = w.to(2).iter().flat_map(chunk_seqs).collect();
    assert_eq!(late, vec![1, 2, 3]);
    w.sync.log_advanced(&mut w.host, 3);
    let sent = w.sent();
    let to = |c: u64| -> Vec<i64> { sent.iter().filter(|(x, _)| *x == c).flat_map(|(_, f)| chunk_seqs(f)).collect() };
    assert_eq!(to(1), vec![2, 3], "the stream caught up at 1 gets 2..=3");
    assert!(to(2).is_empty(), "the stream that read 2..=3 gets nothing twice");
    // The same client pushes at 3 (above this instance's head until it catches up).
    appended_elsewhere(&mut w, 4, 4);
    w.send(2, push("p", events(5, 5), None));
    let sent = w.sent();
    assert!(sent.iter().any(|(c, f)| *c == 2 && is_push_ack(f)), "{sent:?}");
    let to1: Vec<i64> = sent.iter().filter(|(c, _)| *c == 1).flat_map(|(_, f)| chunk_seqs(f)).collect();
    assert_eq!(to1, vec![4, 5], "in order, once");
}

fn appended_elsewhere(w: &mut World, from: i64, to: i64) {
    let template = w.host.stores[STORE].events[0].clone();
    let store = w.host.stores.get_mut(STORE).expect("store");
    for seq in from..=to {
        let mut e = template.clone();
        (e.seq_num, e.parent_seq_num) = (seq, seq - 1);
        store.events.push(e);
    }
    store.head = to;
}
