//! Turns at writing one SQLite file, for the connections of this process. SQLite lets one
//! connection write at a time; the others wait in its busy handler, which sleeps 1, 2, 5 … ms
//! between tries. Under load that wastes milliseconds per write, and a shard that commits
//! again right after its turn can keep another waiting for as long as it stays busy. Taking
//! turns here first hands the file over at once, in the order the writers asked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};

#[derive(Default)]
pub struct WriteGate {
    /// (next ticket to hand out, ticket whose turn it is)
    tickets: Mutex<(u64, u64)>,
    turn_changed: Condvar,
}

/// A writer's turn; the next writer's begins when it is dropped.
pub struct WriteTurn(Arc<WriteGate>);

impl WriteGate {
    /// The gate of the file at `path`, shared by every connection of this process to it.
    pub fn for_file(path: &Path) -> Arc<WriteGate> {
        static GATES: OnceLock<Mutex<HashMap<PathBuf, Weak<WriteGate>>>> = OnceLock::new();
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut gates = crate::lock::lock(GATES.get_or_init(Default::default));
        gates.retain(|_, g| g.strong_count() > 0);
        if let Some(gate) = gates.get(&key).and_then(Weak::upgrade) {
            return gate;
        }
        let gate = Arc::new(WriteGate::default());
        gates.insert(key, Arc::downgrade(&gate));
        gate
    }

    /// Wait for this writer's turn (first come, first served).
    pub fn take_turn(self: &Arc<Self>) -> WriteTurn {
        let mut tickets = crate::lock::lock(&self.tickets);
        let mine = tickets.0;
        tickets.0 += 1;
        while tickets.1 != mine {
            tickets = self.turn_changed.wait(tickets).unwrap_or_else(|e| e.into_inner());
        }
        WriteTurn(self.clone())
    }
}

impl Drop for WriteTurn {
    fn drop(&mut self) {
        crate::lock::lock(&self.0.tickets).1 += 1;
        self.0.turn_changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn writers_take_turns_in_the_order_they_asked() {
        let gate = Arc::new(WriteGate::default());
        let first = gate.take_turn();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for i in 0..3 {
            let (gate, order) = (gate.clone(), order.clone());
            waiting.push(std::thread::spawn(move || {
                let _turn = gate.take_turn();
                order.lock().unwrap().push(i);
            }));
            // Each asks after the one before it is queued.
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(order.lock().unwrap().is_empty(), "nobody writes during another's turn");
        drop(first);
        for w in waiting {
            w.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn connections_to_one_file_share_its_gate() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
        assert!(Arc::ptr_eq(&WriteGate::for_file(&a), &WriteGate::for_file(&a)));
        assert!(!Arc::ptr_eq(&WriteGate::for_file(&a), &WriteGate::for_file(&b)));
    }
}
