//! Live event tails for the admin API and console (`GET /admin/stores/{id}/tail`): each
//! committed batch of a store, as JSON, to whoever follows that store. A store nobody follows
//! costs one map lookup per batch.

use crate::lock::lock;
use crate::storage::Row;
use crate::store_admin::ExportedEvent;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Batches a follower may fall behind by before it is told that it missed some.
const BACKLOG: usize = 256;

/// What a follower of a store receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// A committed batch: a JSON array of exported events.
    Batch(Arc<str>),
    /// The store was reset: its log is empty and it has a new backend id.
    Reset { backend_id: Arc<str> },
}

#[derive(Default)]
pub struct TailHub {
    stores: Mutex<HashMap<String, broadcast::Sender<Tail>>>,
}

impl TailHub {
    /// Follow a store's committed batches.
    pub fn follow(&self, store_id: &str) -> broadcast::Receiver<Tail> {
        let mut stores = lock(&self.stores);
        stores.retain(|_, tx| tx.receiver_count() > 0);
        stores.entry(store_id.to_string()).or_insert_with(|| broadcast::channel(BACKLOG).0).subscribe()
    }

    /// A batch of `store_id` committed.
    pub fn publish(&self, store_id: &str, rows: &[Row]) {
        let mut stores = lock(&self.stores);
        let Some(tx) = stores.get(store_id) else { return };
        if tx.receiver_count() == 0 {
            stores.remove(store_id);
            return;
        }
        let events: Vec<ExportedEvent> = rows.iter().filter_map(|r| ExportedEvent::from_row(r.clone()).ok()).collect();
        if let Ok(json) = serde_json::to_string(&events) {
            let _ = tx.send(Tail::Batch(json.into()));
        }
    }

    /// `store_id` was reset.
    pub fn reset(&self, store_id: &str, backend_id: &str) {
        if let Some(tx) = lock(&self.stores).get(store_id) {
            let _ = tx.send(Tail::Reset { backend_id: backend_id.into() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::storage::test_row as row;

    #[test]
    fn followers_get_each_batch_of_their_store_only() {
        let hub = TailHub::default();
        let mut a = hub.follow("a");
        hub.publish("b", &[row(1)]);
        hub.publish("a", &[row(1), row(2)]);
        let Ok(Tail::Batch(got)) = a.try_recv() else { panic!("a batch") };
        let events: serde_json::Value = serde_json::from_str(&got).expect("json");
        assert_eq!(events[1]["seqNum"], 2);
        assert_eq!(events[0]["args"]["id"], "t");
        assert!(a.try_recv().is_err(), "store b's batch is not a's");
    }

    #[test]
    fn a_store_nobody_follows_any_more_is_forgotten() {
        let hub = TailHub::default();
        drop(hub.follow("a"));
        hub.publish("a", &[row(1)]);
        assert!(lock(&hub.stores).is_empty());
    }
}
