//! Per-connection send queues with a byte budget. The store owner never blocks on a slow
//! client: when a connection's queued bytes exceed the budget it is cut off with a clear close
//! reason instead, so one client that stops reading cannot stall its store or grow memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// A frame or a close queued for one client connection.
#[derive(Debug)]
pub enum Outgoing {
    Text(String),
    Close(u16, String),
}

/// WebSocket close code for a client that does not keep up (1013: try again later).
pub const CLOSE_SLOW_CONSUMER: u16 = 1013;

#[derive(Clone)]
pub struct ConnSender {
    tx: mpsc::UnboundedSender<Outgoing>,
    queued: Arc<AtomicUsize>,
    limit: usize,
    kill: Arc<watch::Sender<Option<(u16, String)>>>,
}

pub struct ConnReceiver {
    rx: mpsc::UnboundedReceiver<Outgoing>,
    queued: Arc<AtomicUsize>,
    kill: watch::Receiver<Option<(u16, String)>>,
}

/// A queue for one connection that holds at most `limit_bytes` of unsent frames.
pub fn conn_queue(limit_bytes: usize) -> (ConnSender, ConnReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (kill_tx, kill_rx) = watch::channel(None);
    let queued = Arc::new(AtomicUsize::new(0));
    (
        ConnSender { tx, queued: queued.clone(), limit: limit_bytes, kill: Arc::new(kill_tx) },
        ConnReceiver { rx, queued, kill: kill_rx },
    )
}

impl ConnSender {
    /// Queue a text frame. Over budget, the connection is cut off (close 1013) and the frame dropped.
    pub fn send_text(&self, text: String) {
        let len = text.len();
        let now = self.queued.fetch_add(len, Ordering::AcqRel) + len;
        if now > self.limit {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            let reason = format!("send queue over {} bytes: the client is not reading", self.limit);
            metrics::counter!(crate::telemetry::SLOW_CONSUMERS_CLOSED).increment(1);
            self.kill(CLOSE_SLOW_CONSUMER, reason);
            return;
        }
        if self.tx.send(Outgoing::Text(text)).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
        }
    }

    /// Queue a close after the frames already queued.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        let _ = self.tx.send(Outgoing::Close(code, reason.into()));
    }

    /// Close now, skipping whatever is queued.
    pub fn kill(&self, code: u16, reason: impl Into<String>) {
        let reason = reason.into();
        self.kill.send_if_modified(|current| {
            if current.is_none() {
                *current = Some((code, reason));
                true
            } else {
                false
            }
        });
    }

    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

impl ConnReceiver {
    /// The next thing to write; a kill wins over queued frames. `None` when every sender is gone.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        if let Some((code, reason)) = self.kill.borrow().clone() {
            return Some(Outgoing::Close(code, reason));
        }
        let killed = tokio::select! {
            biased;
            changed = self.kill.changed() => changed.is_ok(),
            msg = self.rx.recv() => return self.account(msg),
        };
        let reason = if killed { self.kill.borrow().clone() } else { None };
        match reason {
            Some((code, reason)) => Some(Outgoing::Close(code, reason)),
            None => self.next_queued().await,
        }
    }

    async fn next_queued(&mut self) -> Option<Outgoing> {
        let msg = self.rx.recv().await;
        self.account(msg)
    }

    fn account(&self, msg: Option<Outgoing>) -> Option<Outgoing> {
        if let Some(Outgoing::Text(t)) = &msg {
            self.queued.fetch_sub(t.len(), Ordering::AcqRel);
        }
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn over_budget_kills_the_connection_and_bounds_memory() {
        let (tx, mut rx) = conn_queue(10);
        tx.send_text("12345".into());
        tx.send_text("123456".into()); // 11 bytes: over budget, dropped, connection killed
        assert_eq!(tx.queued_bytes(), 5);
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
        let (tx, mut rx) = conn_queue(100);
        tx.send_text("a".into());
        tx.close(1001, "bye");
        assert!(matches!(rx.recv().await, Some(Outgoing::Text(t)) if t == "a"));
        assert!(matches!(rx.recv().await, Some(Outgoing::Close(1001, _))));
        assert_eq!(tx.queued_bytes(), 0);
    }
}
