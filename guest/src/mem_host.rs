//! An in-memory [`Host`]: for unit tests and fuzzing of the sync logic without wasmtime.
//! Appends are atomic and head-guarded like the real storage.

use crate::host::{AppendError, Caller, EventRow, HookKinds, Host, LogLevel, Settings, StoreState, Telemetry};
use std::collections::HashMap;

#[derive(Default)]
pub struct MemStore {
    pub head: i64,
    pub backend_id: String,
    pub events: Vec<EventRow>,
    pub ids: HashMap<String, i64>,
}

pub struct MemHost {
    pub stores: HashMap<String, MemStore>,
    /// Every frame sent, in order.
    pub sent: Vec<(u64, String)>,
    pub closed: Vec<(u64, u16)>,
    pub token: Option<String>,
    pub max_push_events: u32,
    /// Make the next append fail (storage error injection).
    pub fail_next_append: bool,
    /// The last state each connection saved (`save_state`).
    pub saved: HashMap<u64, String>,
    /// The frames each connection's host may drop unread (`set_ignored_frames`).
    pub ignored: HashMap<u64, Vec<String>>,
    pub hooks: HookKinds,
    /// on-push rejects batches containing an event with this name.
    pub reject_event_name: Option<String>,
    /// on-pull rejects pulls from this cursor.
    pub reject_pull_cursor: Option<i64>,
    /// Every batch the after-push hook saw: (caller, seqNums).
    pub after_pushes: Vec<(Caller, Vec<i64>)>,
    /// The wall clock, in milliseconds since the Unix epoch; tests set it.
    pub now_millis: i64,
    /// The monotonic clock in microseconds; each reading advances it by one.
    pub monotonic_micros: u64,
    /// The next random byte: randomness is a counter, so backend ids are predictable.
    pub next_random: u8,
}

/// `MemHost`'s clock starts here: 2026-11-26T18:53:10.284Z.
pub const MEM_HOST_EPOCH_MILLIS: i64 = 1_795_719_190_284;

impl Default for MemHost {
    fn default() -> Self {
        MemHost {
            stores: HashMap::new(),
            sent: Vec::new(),
            closed: Vec::new(),
            token: None,
            max_push_events: 1000,
            fail_next_append: false,
            saved: HashMap::new(),
            ignored: HashMap::new(),
            hooks: HookKinds::default(),
            reject_event_name: None,
            reject_pull_cursor: None,
            after_pushes: Vec::new(),
            now_millis: MEM_HOST_EPOCH_MILLIS,
            monotonic_micros: 0,
            next_random: 0,
        }
    }
}

impl MemHost {
    pub fn frames_for(&self, conn: u64) -> Vec<&str> {
        self.sent.iter().filter(|(c, _)| *c == conn).map(|(_, f)| f.as_str()).collect()
    }

    pub fn saved_state(&self, conn: u64) -> Option<&str> {
        self.saved.get(&conn).map(String::as_str)
    }
}

impl Host for MemHost {
    fn init_store(&mut self, store_id: &str, fresh_backend_id: &str) -> Result<StoreState, String> {
        let s = self
            .stores
            .entry(store_id.to_string())
            .or_insert_with(|| MemStore { backend_id: fresh_backend_id.to_string(), ..MemStore::default() });
        Ok(StoreState { head: s.head, backend_id: s.backend_id.clone() })
    }

    fn append_batch(&mut self, store_id: &str, expected_head: i64, events: &[EventRow]) -> Result<(), AppendError> {
        if std::mem::take(&mut self.fail_next_append) {
            return Err(AppendError::Storage("injected storage failure".into()));
        }
        let s = self.stores.get_mut(store_id).ok_or_else(|| AppendError::Storage("unknown store".into()))?;
        if s.head != expected_head {
            return Err(AppendError::HeadMoved(s.head));
        }
        let mut prev = s.events.last().map_or(0, |e| e.seq_num);
        for e in events {
            if e.seq_num <= prev {
                return Err(AppendError::Storage(format!("seqNum {} is not above {prev}", e.seq_num)));
            }
            if e.event_id.as_ref().is_some_and(|id| s.ids.contains_key(id)) {
                return Err(AppendError::Storage("duplicate event id".into()));
            }
            prev = e.seq_num;
        }
        for e in events {
            if let Some(id) = &e.event_id {
                s.ids.insert(id.clone(), e.seq_num);
            }
            s.events.push(e.clone());
        }
        s.head = prev;
        Ok(())
    }

    fn find_event_ids(&mut self, store_id: &str, ids: &[String]) -> Result<Vec<Option<i64>>, String> {
        let s = self.stores.get(store_id).ok_or("unknown store")?;
        Ok(ids.iter().map(|id| s.ids.get(id).copied()).collect())
    }

    fn seq_at_time(&mut self, store_id: &str, timestamp: &str) -> Result<i64, String> {
        let s = self.stores.get(store_id).ok_or("unknown store")?;
        Ok(s.events.iter().filter(|e| e.created_at.as_str() <= timestamp).map(|e| e.seq_num).max().unwrap_or(0))
    }

    fn count_after(&mut self, store_id: &str, cursor: i64) -> Result<u64, String> {
        let s = self.stores.get(store_id).ok_or("unknown store")?;
        Ok(s.events.iter().filter(|e| e.seq_num > cursor).count() as u64)
    }

    fn read_after(&mut self, store_id: &str, cursor: i64, limit: u32) -> Result<Vec<EventRow>, String> {
        let s = self.stores.get(store_id).ok_or("unknown store")?;
        Ok(s.events.iter().filter(|e| e.seq_num > cursor).take(limit as usize).cloned().collect())
    }

    fn send(&mut self, conn: u64, frame: &str) {
        self.sent.push((conn, frame.to_string()));
    }

    fn close(&mut self, conn: u64, code: u16, _reason: &str) {
        self.closed.push((conn, code));
    }

    fn check_token(&mut self, token: &str) -> bool {
        self.token.as_deref().is_none_or(|t| t == token)
    }

    fn save_state(&mut self, conn: u64, state: &str) {
        self.saved.insert(conn, state.to_string());
    }

    fn set_ignored_frames(&mut self, conn: u64, frames: &[String]) {
        self.ignored.insert(conn, frames.to_vec());
    }

    fn record(&mut self, _event: Telemetry) {}

    fn log(&mut self, _level: LogLevel, _message: &str) {}

    fn settings(&mut self) -> Settings {
        Settings { max_push_events: self.max_push_events }
    }

    fn hooks_loaded(&mut self) -> HookKinds {
        self.hooks
    }

    fn on_push_hook(&mut self, _caller: Caller, rows: &[EventRow]) -> Result<(), String> {
        match &self.reject_event_name {
            Some(bad) if rows.iter().any(|r| &r.name == bad) => Err(format!("event {bad} is not allowed")),
            _ => Ok(()),
        }
    }

    fn on_pull_hook(&mut self, _caller: Caller, cursor: i64, _live: bool) -> Result<(), String> {
        match self.reject_pull_cursor {
            Some(c) if c == cursor => Err(format!("pulls from {c} are not allowed")),
            _ => Ok(()),
        }
    }

    fn after_push_hook(&mut self, caller: Caller, rows: &[EventRow]) {
        self.after_pushes.push((caller, rows.iter().map(|r| r.seq_num).collect()));
    }

    fn now_millis(&mut self) -> i64 {
        self.now_millis
    }

    fn monotonic_micros(&mut self) -> u64 {
        self.monotonic_micros += 1;
        self.monotonic_micros
    }

    fn random_bytes(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_random;
            self.next_random = self.next_random.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Protocol, StoreSync};

    fn push(id: &str, seqs: &[(i64, i64)]) -> String {
        let batch: Vec<String> = seqs
            .iter()
            .map(|(s, p)| format!(r#"{{"name":"e","args":{{"n":{s}}},"seqNum":{s},"parentSeqNum":{p},"clientId":"c","sessionId":"s"}}"#))
            .collect();
        format!(
            r#"{{"_tag":"Request","id":"{id}","tag":"SyncWsRpc.Push","payload":{{"storeId":"s","batch":[{}],"backendId":{{"_tag":"None"}}}}}}"#,
            batch.join(",")
        )
    }

    #[test]
    fn a_storage_failure_rejects_the_push_and_keeps_the_head() {
        let mut host = MemHost::default();
        let mut sync = StoreSync::open(&mut host, "s").unwrap();
        sync.connection_opened(1, Protocol::LiveStore, true, None);
        host.fail_next_append = true;
        sync.frame(&mut host, 1, &push("1", &[(1, 0)]));
        assert!(host.sent[0].1.contains("StorageError"), "{}", host.sent[0].1);
        assert_eq!(sync.head(), 0);
        sync.frame(&mut host, 1, &push("2", &[(1, 0)]));
        assert!(host.sent[1].1.contains(r#""value":{}"#), "{}", host.sent[1].1);
        assert_eq!(sync.head(), 1);
    }

    #[test]
    fn batches_over_the_limit_are_rejected_whole() {
        let mut host = MemHost { max_push_events: 2, ..MemHost::default() };
        let mut sync = StoreSync::open(&mut host, "s").unwrap();
        sync.connection_opened(1, Protocol::LiveStore, true, None);
        sync.frame(&mut host, 1, &push("1", &[(1, 0), (2, 1), (3, 2)]));
        assert!(host.sent[0].1.contains("BatchTooLargeError"), "{}", host.sent[0].1);
        assert!(host.stores["s"].events.is_empty());
    }

    #[test]
    fn an_on_push_hook_rejection_stores_nothing_and_after_push_sees_committed_batches() {
        let mut host = MemHost {
            hooks: HookKinds { on_push: true, on_pull: true, after_push: true },
            reject_event_name: Some("forbidden".into()),
            ..MemHost::default()
        };
        let mut sync = StoreSync::open(&mut host, "s").expect("open");
        sync.connection_opened(1, Protocol::LiveStore, true, None);
        sync.frame(&mut host, 1, &push("a", &[(1, 0), (2, 1)]));
        let bad = push("b", &[(3, 2)]).replace(r#""name":"e""#, r#""name":"forbidden""#);
        sync.frame(&mut host, 1, &bad);
        let frames = host.frames_for(1).join("\n");
        assert!(frames.contains("HookRejected") && frames.contains("event forbidden is not allowed"), "{frames}");
        assert_eq!(sync.head(), 2);
        assert_eq!(host.stores["s"].events.len(), 2);
        assert_eq!(host.after_pushes, vec![(Caller::Connection(1), vec![1, 2])]);
    }

    #[test]
    fn an_on_pull_hook_rejection_fails_the_pull() {
        let mut host = MemHost {
            hooks: HookKinds { on_pull: true, ..HookKinds::default() },
            reject_pull_cursor: Some(0),
            ..MemHost::default()
        };
        let mut sync = StoreSync::open(&mut host, "s").expect("open");
        sync.connection_opened(1, Protocol::LiveStore, true, None);
        sync.frame(
            &mut host,
            1,
            r#"{"_tag":"Request","id":"p","tag":"SyncWsRpc.Pull","payload":{"storeId":"s","payload":{},"cursor":{"_tag":"None"},"live":true},"headers":[]}"#,
        );
        let frames = host.frames_for(1).join("\n");
        assert!(frames.contains(r#""_tag":"Failure""#) && frames.contains("pulls from 0 are not allowed"), "{frames}");
    }
}
