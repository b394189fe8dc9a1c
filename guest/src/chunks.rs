//! Pull-stream state and chunking: Ack-gated catch-up from storage, then (for live pulls)
//! broadcasts, in chunks of bounded count and size.

use crate::encode;
use crate::host::EventRow;

/// At most this many events per chunk (`@livestore/sync-cf`'s page split).
pub const MAX_EVENTS_PER_CHUNK: usize = 100;
/// At most this many bytes of encoded events per chunk (`@livestore/sync-cf`'s transport budget).
pub const MAX_CHUNK_BYTES: usize = 900_000;

/// One running `SyncWsRpc.Pull` on a connection.
#[derive(Debug)]
pub struct PullStream {
    pub request_id: String,
    pub live: bool,
    /// seqNum of the last event sent (or the request's cursor).
    pub cursor: i64,
    /// Events after `cursor` that the catch-up still has to send.
    pub remaining: u64,
    /// A chunk was sent and its Ack has not arrived yet.
    pub awaiting_ack: bool,
    /// The chunk with `NoMore` was sent: a live stream now receives broadcasts,
    /// a finite one ends with `Exit` at the next Ack.
    pub caught_up: bool,
}

/// Encode rows into chunks of at most [`MAX_EVENTS_PER_CHUNK`] events and
/// [`MAX_CHUNK_BYTES`] bytes (one oversized event still gets a chunk of its own).
/// Returns `(encoded items, number of rows)` per chunk.
pub fn split_into_chunks(rows: &[EventRow]) -> Vec<(String, usize)> {
    let mut chunks = Vec::new();
    let mut items = String::new();
    let mut count = 0usize;
    let mut item = String::new();
    for row in rows {
        item.clear();
        encode::push_item(&mut item, row);
        let extra = item.len() + usize::from(count > 0);
        if count > 0 && (count == MAX_EVENTS_PER_CHUNK || items.len() + extra > MAX_CHUNK_BYTES) {
            chunks.push((std::mem::take(&mut items), count));
            count = 0;
        }
        if count > 0 {
            items.push(',');
        }
        items.push_str(&item);
        count += 1;
    }
    if count > 0 {
        chunks.push((items, count));
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, args_len: usize) -> EventRow {
        EventRow {
            seq_num: seq,
            parent_seq_num: seq - 1,
            name: "e".into(),
            args: Some(format!("\"{}\"", "x".repeat(args_len))),
            created_at: "t".into(),
            client_id: "c".into(),
            session_id: "s".into(),
            event_id: None,
        }
    }

    #[test]
    fn splits_by_count() {
        let rows: Vec<_> = (1..=250).map(|i| row(i, 1)).collect();
        let sizes: Vec<_> = split_into_chunks(&rows).iter().map(|c| c.1).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
    }

    #[test]
    fn splits_by_bytes_and_keeps_oversized_events() {
        let rows: Vec<_> = (1..=5).map(|i| row(i, 400_000)).collect();
        let chunks = split_into_chunks(&rows);
        assert_eq!(chunks.iter().map(|c| c.1).collect::<Vec<_>>(), vec![2, 2, 1]);
        assert!(chunks.iter().all(|c| c.0.len() <= MAX_CHUNK_BYTES));
        let big = vec![row(1, 1_000_000), row(2, 1)];
        assert_eq!(split_into_chunks(&big).iter().map(|c| c.1).collect::<Vec<_>>(), vec![1, 1]);
    }
}
