//! Connections that have not sent a complete request yet. Each has `--header-timeout-secs` to
//! do so (hyper's header read timeout); on top of that at most `--max-pending-connections` wait
//! at once, and a new connection past that closes the oldest waiting one. Silent or
//! byte-a-second sockets then cycle out instead of holding every file descriptor, and a real
//! client that sends its request at once always gets in.

use crate::lock::lock;
use crate::telemetry::CONNECTIONS_REFUSED;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

pub struct PendingConnections {
    limit: usize,
    next: AtomicU64,
    /// In arrival order (ids increase), so the first entry is the oldest.
    waiting: Mutex<BTreeMap<u64, CancellationToken>>,
}

/// One waiting connection; dropping it removes it.
pub struct Pending {
    id: u64,
    registry: Arc<PendingConnections>,
    /// Cancelled when this connection is closed to make room.
    pub evicted: CancellationToken,
}

impl PendingConnections {
    pub fn new(limit: usize) -> Arc<PendingConnections> {
        Arc::new(PendingConnections {
            limit: limit.max(1),
            next: AtomicU64::new(0),
            waiting: Mutex::new(BTreeMap::new()),
        })
    }

    /// Count a new connection, closing the oldest waiting one when there are too many.
    pub fn register(self: &Arc<Self>) -> Pending {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let evicted = CancellationToken::new();
        let mut waiting = lock(&self.waiting);
        waiting.insert(id, evicted.clone());
        while waiting.len() > self.limit {
            if let Some((_, oldest)) = waiting.pop_first() {
                metrics::counter!(CONNECTIONS_REFUSED, "reason" => "pending-evicted").increment(1);
                oldest.cancel();
            }
        }
        Pending { id, registry: self.clone(), evicted }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.waiting).len()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        lock(&self.registry.waiting).remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::PendingConnections;

    #[test]
    fn the_oldest_waiting_connection_makes_room() {
        let registry = PendingConnections::new(2);
        let a = registry.register();
        let b = registry.register();
        let c = registry.register();
        assert!(a.evicted.is_cancelled());
        assert!(!b.evicted.is_cancelled() && !c.evicted.is_cancelled());
        drop(b);
        let d = registry.register();
        assert!(!c.evicted.is_cancelled() && !d.evicted.is_cancelled());
        assert_eq!(registry.len(), 2);
    }
}
