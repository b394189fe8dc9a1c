//! Admission checks for a pushed batch: it must continue the head and form one chain.

use crate::host::EventRow;
use crate::wire::WireEvent;

/// The largest sequence number a LiveStore client can hold exactly: its seqNums are
/// JavaScript numbers (`Number.MAX_SAFE_INTEGER`, 2^53 − 1).
pub const MAX_SEQ_NUM: i64 = (1 << 53) - 1;

/// Why a batch cannot be admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    /// `batch[0].parentSeqNum != head` (the client is behind or ahead of the server).
    ServerAhead { head: i64, provided: i64 },
    /// The batch is not a chain: wrong parent or non-increasing seqNum at `index`.
    BrokenChain { index: usize, message: String },
}

/// Check that `batch` continues the log at `head` and forms one chain.
pub fn check_batch(head: i64, batch: &[WireEvent<'_>]) -> Result<(), Rejection> {
    let Some(first) = batch.first() else {
        return Ok(());
    };
    // Checked before anything else: an out-of-range number must never reach storage (or
    // arithmetic), whatever the head is.
    for (index, ev) in batch.iter().enumerate() {
        for (field, value) in [("seqNum", ev.seq_num), ("parentSeqNum", ev.parent_seq_num)] {
            if !(0..=MAX_SEQ_NUM).contains(&value) {
                return Err(Rejection::BrokenChain {
                    index,
                    message: format!(
                        "event {index} has {field} {value}, outside 0..={MAX_SEQ_NUM} (a JavaScript safe integer)"
                    ),
                });
            }
        }
    }
    if first.parent_seq_num != head {
        return Err(Rejection::ServerAhead { head, provided: first.parent_seq_num });
    }
    let mut prev_seq = head;
    for (index, ev) in batch.iter().enumerate() {
        if ev.parent_seq_num != prev_seq {
            return Err(Rejection::BrokenChain {
                index,
                message: format!(
                    "event {index} (seqNum {}) has parentSeqNum {}, expected {prev_seq} (the previous event's seqNum)",
                    ev.seq_num, ev.parent_seq_num
                ),
            });
        }
        if ev.seq_num <= prev_seq {
            return Err(Rejection::BrokenChain {
                index,
                message: format!("event {index} has seqNum {}, which does not increase past {prev_seq}", ev.seq_num),
            });
        }
        prev_seq = ev.seq_num;
    }
    Ok(())
}

/// The rows to store for an admitted batch, all stamped with the push's server time.
pub fn to_rows(batch: &[WireEvent<'_>], created_at: &str) -> Vec<EventRow> {
    batch
        .iter()
        .map(|ev| EventRow {
            seq_num: ev.seq_num,
            parent_seq_num: ev.parent_seq_num,
            name: ev.name.clone(),
            args: ev.args.map(|a| a.get().to_string()),
            created_at: created_at.to_string(),
            client_id: ev.client_id.clone(),
            session_id: ev.session_id.clone(),
            event_id: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: i64, parent: i64) -> WireEvent<'static> {
        WireEvent {
            name: "e".into(),
            args: None,
            seq_num: seq,
            parent_seq_num: parent,
            client_id: "c".into(),
            session_id: "s".into(),
        }
    }

    #[test]
    fn accepts_a_chain_at_the_head() {
        assert_eq!(check_batch(3, &[ev(4, 3), ev(5, 4), ev(9, 5)]), Ok(()));
        assert_eq!(check_batch(0, &[]), Ok(()));
    }

    #[test]
    fn parent_behind_or_ahead_is_server_ahead() {
        assert_eq!(check_batch(3, &[ev(2, 1)]), Err(Rejection::ServerAhead { head: 3, provided: 1 }));
        assert_eq!(check_batch(3, &[ev(9, 8)]), Err(Rejection::ServerAhead { head: 3, provided: 8 }));
    }

    #[test]
    fn broken_chains_are_rejected_with_the_index() {
        assert!(matches!(
            check_batch(0, &[ev(1, 0), ev(2, 1), ev(3, 99)]),
            Err(Rejection::BrokenChain { index: 2, .. })
        ));
        assert!(matches!(check_batch(0, &[ev(1, 0), ev(1, 1)]), Err(Rejection::BrokenChain { index: 1, .. })));
        assert!(matches!(check_batch(5, &[ev(5, 5)]), Err(Rejection::BrokenChain { index: 0, .. })));
        let mut batch: Vec<_> = (1..=20).map(|i| ev(i, i - 1)).collect();
        batch[15] = ev(3, 15);
        assert!(matches!(check_batch(0, &batch), Err(Rejection::BrokenChain { index: 15, .. })));
    }

    #[test]
    fn seq_nums_outside_the_safe_integer_range_are_rejected() {
        assert_eq!(check_batch(MAX_SEQ_NUM - 1, &[ev(MAX_SEQ_NUM, MAX_SEQ_NUM - 1)]), Ok(()));
        assert!(matches!(check_batch(0, &[ev(1, 0), ev(i64::MAX, 1)]), Err(Rejection::BrokenChain { index: 1, .. })));
        assert!(matches!(check_batch(0, &[ev(MAX_SEQ_NUM + 1, 0)]), Err(Rejection::BrokenChain { index: 0, .. })));
        // Even a parent that matches a (corrupt) head out of range is refused.
        assert!(matches!(check_batch(-5, &[ev(1, -5)]), Err(Rejection::BrokenChain { index: 0, .. })));
    }
}
