//! Shared driver: feed newline-separated frames to a store over two LiveStore connections and
//! one simple-protocol connection, and check the log's invariants after every frame.

use livestore_sync_guest::mem_host::MemHost;
use livestore_sync_guest::{Protocol, StoreSync};

pub fn drive(data: &[u8], default_conn: u64) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut host = MemHost { max_push_events: 50, ..MemHost::default() };
    let Ok(mut sync) = StoreSync::open(&mut host, "s") else { return };
    sync.connection_opened(1, Protocol::LiveStore, true, None);
    sync.connection_opened(2, Protocol::LiveStore, true, None);
    sync.connection_opened(3, Protocol::Simple, true, Some("dev".into()));
    let mut last_head = 0;
    for line in text.split('\n').take(64) {
        // A leading digit picks the connection.
        let (conn, frame) = match line.as_bytes().first() {
            Some(b @ b'1'..=b'3') => (u64::from(b - b'0'), &line[1..]),
            _ => (default_conn, line),
        };
        sync.frame(&mut host, conn, frame);
        let store = &host.stores["s"];
        assert!(sync.head() >= last_head, "head went back");
        last_head = sync.head();
        assert_eq!(store.head, sync.head(), "memory and storage disagree on the head");
        let mut prev = 0;
        for e in &store.events {
            assert!(e.seq_num > prev, "seqNums must increase");
            prev = e.seq_num;
        }
        assert_eq!(store.events.last().map_or(0, |e| e.seq_num), store.head, "head is the last event");
    }
    for (_, frame) in &host.sent {
        assert!(serde_json::from_str::<serde_json::Value>(frame).is_ok(), "server sent invalid JSON: {frame}");
    }
}
