//! Per-connection send queues with two byte budgets. The store owner never blocks on a slow
//! client: when one connection's queued bytes exceed its budget it is cut off with a clear
//! close reason, and when the bytes queued across all connections exceed the server's budget
//! the connections holding the most are cut off first until the total fits. A cut-off
//! connection's queued frames are freed at once (not when its socket write gives up), so
//! memory stays bounded whatever the number of slow readers.
//!
//! The same handle carries the incoming frames the component said it would ignore on this
//! connection (`connections.set-ignored-frames`), which the socket's reader drops unread.

use crate::lock::lock;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use tokio::sync::Notify;

/// A frame or a close queued for one client connection.
#[derive(Debug)]
pub enum Outgoing {
    Text(String),
    Close(u16, String),
}

/// WebSocket close code for a client that does not keep up (1013: try again later).
pub const CLOSE_SLOW_CONSUMER: u16 = 1013;

/// The byte budget shared by every connection of a server.
pub struct QueueBudget {
    limit: usize,
    total: AtomicUsize,
    conns: Mutex<HashMap<u64, Weak<Shared>>>,
}

impl QueueBudget {
    pub fn new(limit: usize) -> Arc<QueueBudget> {
        Arc::new(QueueBudget { limit, total: AtomicUsize::new(0), conns: Mutex::new(HashMap::new()) })
    }

    /// Bytes queued across all connections.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Cut off the connections holding the most bytes until the total fits the budget again.
    fn shed(&self) {
        let mut candidates: Vec<(usize, Arc<Shared>)> = lock(&self.conns)
            .values()
            .filter_map(Weak::upgrade)
            .filter_map(|s| {
                let q = lock(&s.queue);
                let held = q.bytes + q.in_write;
                (q.kill.is_none() && held > 0).then(|| (held, s.clone()))
            })
            .collect();
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
        for (bytes, shared) in candidates {
            if self.total() <= self.limit {
                break;
            }
            let reason = format!(
                "the server's send queues are over {} bytes and this connection held the most ({bytes}): \
                 the client is not reading",
                self.limit
            );
            metrics::counter!(crate::telemetry::SLOW_CONSUMERS_CLOSED).increment(1);
            shared.kill(self, CLOSE_SLOW_CONSUMER, reason);
        }
    }
}

struct Queue {
    frames: VecDeque<Outgoing>,
    /// Bytes of the text frames in `frames`.
    bytes: usize,
    /// Bytes of the frame the writer took last: still in memory (being written to the socket)
    /// until it asks for the next one, so still counted.
    in_write: usize,
    /// Set once: the close to send instead of anything queued.
    kill: Option<(u16, String)>,
    /// The receiver is gone: nothing more is queued.
    closed: bool,
    senders: usize,
}

struct Shared {
    conn: u64,
    queue: Mutex<Queue>,
    notify: Notify,
    /// Exact texts of incoming frames the component would do nothing with.
    ignored: RwLock<Vec<String>>,
}

impl Shared {
    /// Drop everything queued (returning its bytes to the budget) and close with `code`.
    fn kill(&self, budget: &QueueBudget, code: u16, reason: String) {
        let mut q = lock(&self.queue);
        if q.kill.is_none() {
            q.kill = Some((code, reason));
        }
        // The frame in the middle of a write (if any) is released from the budget now too: it
        // is freed when that write ends, within the send timeout, and must not make the budget
        // cut off other connections meanwhile.
        budget.total.fetch_sub(q.bytes + q.in_write, Ordering::AcqRel);
        q.bytes = 0;
        q.in_write = 0;
        q.frames.clear();
        drop(q);
        self.notify.notify_one();
    }
}

pub struct ConnSender {
    shared: Arc<Shared>,
    budget: Arc<QueueBudget>,
    limit: usize,
}

pub struct ConnReceiver {
    shared: Arc<Shared>,
    budget: Arc<QueueBudget>,
}

/// A queue for connection `conn` that holds at most `limit_bytes` of unsent frames, and
/// counts against `budget`.
pub fn conn_queue(budget: &Arc<QueueBudget>, conn: u64, limit_bytes: usize) -> (ConnSender, ConnReceiver) {
    let queue = Queue { frames: VecDeque::new(), bytes: 0, in_write: 0, kill: None, closed: false, senders: 1 };
    let shared =
        Arc::new(Shared { conn, queue: Mutex::new(queue), notify: Notify::new(), ignored: RwLock::new(Vec::new()) });
    lock(&budget.conns).insert(conn, Arc::downgrade(&shared));
    (
        ConnSender { shared: shared.clone(), budget: budget.clone(), limit: limit_bytes },
        ConnReceiver { shared, budget: budget.clone() },
    )
}

impl Clone for ConnSender {
    fn clone(&self) -> Self {
        lock(&self.shared.queue).senders += 1;
        ConnSender { shared: self.shared.clone(), budget: self.budget.clone(), limit: self.limit }
    }
}

impl Drop for ConnSender {
    fn drop(&mut self) {
        let mut q = lock(&self.shared.queue);
        q.senders -= 1;
        let last = q.senders == 0;
        drop(q);
        if last {
            self.shared.notify.notify_one();
        }
    }
}

impl ConnSender {
    /// Queue a text frame. Over this connection's budget, the connection is cut off (close
    /// 1013) and the frame dropped; over the server's budget, the biggest queues are cut off.
    pub fn send_text(&self, text: String) {
        let len = text.len();
        let mut q = lock(&self.shared.queue);
        if q.kill.is_some() || q.closed {
            return;
        }
        if q.bytes + q.in_write + len > self.limit {
            drop(q);
            let reason = format!("send queue over {} bytes: the client is not reading", self.limit);
            metrics::counter!(crate::telemetry::SLOW_CONSUMERS_CLOSED).increment(1);
            self.shared.kill(&self.budget, CLOSE_SLOW_CONSUMER, reason);
            return;
        }
        q.bytes += len;
        q.frames.push_back(Outgoing::Text(text));
        // Added under the queue's lock, as every subtraction is: the total never dips below zero.
        let total = self.budget.total.fetch_add(len, Ordering::AcqRel) + len;
        drop(q);
        self.shared.notify.notify_one();
        if total > self.budget.limit {
            self.budget.shed();
        }
    }

    /// Queue a close after the frames already queued.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        let mut q = lock(&self.shared.queue);
        if q.kill.is_none() && !q.closed {
            q.frames.push_back(Outgoing::Close(code, reason.into()));
        }
        drop(q);
        self.shared.notify.notify_one();
    }

    /// Close now, dropping whatever is queued.
    pub fn kill(&self, code: u16, reason: impl Into<String>) {
        self.shared.kill(&self.budget, code, reason.into());
    }

    /// Replace the incoming frames the component would ignore on this connection.
    pub fn set_ignored_frames(&self, frames: Vec<String>) {
        *self.shared.ignored.write().unwrap_or_else(|e| e.into_inner()) = frames;
    }

    /// Whether an incoming frame is one the component said it would ignore.
    pub fn ignores(&self, frame: &str) -> bool {
        self.shared.ignored.read().unwrap_or_else(|e| e.into_inner()).iter().any(|f| f == frame)
    }

    /// Bytes queued, the frame being written included.
    pub fn queued_bytes(&self) -> usize {
        let q = lock(&self.shared.queue);
        q.bytes + q.in_write
    }
}

impl ConnReceiver {
    /// The next thing to write; a kill wins over queued frames. `None` when every sender is
    /// gone and nothing is left.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        loop {
            {
                let mut q = lock(&self.shared.queue);
                // Asking again means the last frame was written (or dropped).
                self.budget.total.fetch_sub(q.in_write, Ordering::AcqRel);
                q.in_write = 0;
                if let Some((code, reason)) = q.kill.clone() {
                    return Some(Outgoing::Close(code, reason));
                }
                if let Some(out) = q.frames.pop_front() {
                    if let Outgoing::Text(t) = &out {
                        q.bytes -= t.len();
                        q.in_write = t.len();
                    }
                    return Some(out);
                }
                if q.senders == 0 {
                    return None;
                }
            }
            self.shared.notify.notified().await;
        }
    }
}

impl Drop for ConnReceiver {
    fn drop(&mut self) {
        let mut q = lock(&self.shared.queue);
        q.closed = true;
        self.budget.total.fetch_sub(q.bytes + q.in_write, Ordering::AcqRel);
        q.bytes = 0;
        q.in_write = 0;
        q.frames.clear();
        drop(q);
        lock(&self.budget.conns).remove(&self.shared.conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn over_budget_kills_the_connection_and_frees_its_queue() {
        let budget = QueueBudget::new(usize::MAX);
        let (tx, mut rx) = conn_queue(&budget, 1, 10);
        tx.send_text("12345".into());
        tx.send_text("123456".into()); // 11 bytes: over budget, connection killed, queue freed
        assert_eq!(tx.queued_bytes(), 0);
        assert_eq!(budget.total(), 0);
        match rx.recv().await {
            Some(Outgoing::Close(code, reason)) => {
                assert_eq!(code, CLOSE_SLOW_CONSUMER);
                assert!(reason.contains("not reading"));
            }
            other => panic!("expected a close, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn frames_and_closes_keep_their_order_within_budget() {
        let budget = QueueBudget::new(usize::MAX);
        let (tx, mut rx) = conn_queue(&budget, 1, 100);
        tx.send_text("a".into());
        tx.close(1001, "bye");
        assert!(matches!(rx.recv().await, Some(Outgoing::Text(t)) if t == "a"));
        assert!(matches!(rx.recv().await, Some(Outgoing::Close(1001, _))));
        assert_eq!(tx.queued_bytes(), 0);
        drop(tx);
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn the_server_budget_cuts_off_the_biggest_queues_first() {
        let budget = QueueBudget::new(100);
        let queues: Vec<_> = (0..4).map(|i| conn_queue(&budget, i, 1000)).collect();
        queues[0].0.send_text("x".repeat(10));
        queues[1].0.send_text("x".repeat(60));
        queues[2].0.send_text("x".repeat(25));
        assert_eq!(budget.total(), 95);
        // 20 more bytes: 115 > 100, the 60-byte queue goes, the rest stays.
        queues[3].0.send_text("x".repeat(20));
        assert_eq!(budget.total(), 55);
        let sizes: Vec<usize> = queues.iter().map(|(tx, _)| tx.queued_bytes()).collect();
        assert_eq!(sizes, vec![10, 0, 25, 20]);
        let (_, mut cut) = queues.into_iter().nth(1).expect("queue 1");
        assert!(
            matches!(cut.recv().await, Some(Outgoing::Close(CLOSE_SLOW_CONSUMER, r)) if r.contains("held the most"))
        );
    }

    #[tokio::test]
    async fn a_frame_counts_until_the_writer_asks_for_the_next() {
        let budget = QueueBudget::new(100);
        let (a, mut a_rx) = conn_queue(&budget, 1, 1000);
        let (b, _b_rx) = conn_queue(&budget, 2, 1000);
        a.send_text("x".repeat(80));
        assert!(matches!(a_rx.recv().await, Some(Outgoing::Text(_))));
        assert_eq!(budget.total(), 80, "being written, still in memory");
        // 110 > 100: the connection stuck writing 80 bytes is the one cut off.
        b.send_text("y".repeat(30));
        assert!(matches!(a_rx.recv().await, Some(Outgoing::Close(CLOSE_SLOW_CONSUMER, _))));
        assert_eq!(budget.total(), 30);
        assert_eq!(b.queued_bytes(), 30);
    }

    #[tokio::test]
    async fn a_dropped_receiver_returns_its_bytes() {
        let budget = QueueBudget::new(1000);
        let (tx, rx) = conn_queue(&budget, 7, 1000);
        tx.send_text("x".repeat(300));
        assert_eq!(budget.total(), 300);
        drop(rx);
        assert_eq!(budget.total(), 0);
        tx.send_text("y".into());
        assert_eq!(budget.total(), 0, "nothing is queued for a closed connection");
    }
}
