//! Store owners. Each shard is one thread with its own SQLite connection; it owns the
//! component instances of the stores hashed to it and handles their messages in arrival
//! order, so every store has exactly one serial owner (the Durable Object model).

use crate::runtime::{ConnSender, Outgoing, ShardIo, StoreInstance, SyncRuntime};
use crate::storage::{Db, Durability};
use anyhow::{anyhow, Context, Result};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

pub enum ShardMsg {
    Open {
        conn: u64,
        store_id: Arc<str>,
        payload: Option<String>,
        headers: Vec<(String, String)>,
        out: ConnSender,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Frame {
        conn: u64,
        store_id: Arc<str>,
        text: String,
    },
    Closed {
        conn: u64,
        store_id: Arc<str>,
    },
    /// Finish what is queued, then stop.
    Stop,
}

pub struct Shards {
    senders: Vec<mpsc::UnboundedSender<ShardMsg>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shards {
    pub fn start(runtime: Arc<SyncRuntime>, db_path: PathBuf, durability: Durability, count: usize) -> Result<Shards> {
        let count = count.max(1);
        let mut senders = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for index in 0..count {
            let db = Db::open(&db_path, durability)?;
            let io = Arc::new(ShardIo { db: Mutex::new(db), conns: Mutex::new(HashMap::new()) });
            let (tx, rx) = mpsc::unbounded_channel();
            let runtime = runtime.clone();
            let thread = std::thread::Builder::new()
                .name(format!("store-shard-{index}"))
                .spawn(move || ShardLoop { runtime, io, stores: HashMap::new() }.run(rx))
                .context("spawning a store shard thread")?;
            senders.push(tx);
            threads.push(thread);
        }
        Ok(Shards { senders, threads: Mutex::new(threads) })
    }

    /// The serial owner of `store_id`.
    pub fn route(&self, store_id: &str) -> &mpsc::UnboundedSender<ShardMsg> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        store_id.hash(&mut h);
        &self.senders[(h.finish() % self.senders.len() as u64) as usize]
    }

    /// Process everything already queued, then stop the shard threads.
    pub fn stop(&self) {
        for tx in &self.senders {
            let _ = tx.send(ShardMsg::Stop);
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            if t.join().is_err() {
                tracing::error!("a store shard thread panicked");
            }
        }
    }
}

struct OpenStore {
    instance: StoreInstance,
    conns: HashSet<u64>,
}

struct ShardLoop {
    runtime: Arc<SyncRuntime>,
    io: Arc<ShardIo>,
    stores: HashMap<Arc<str>, OpenStore>,
}

impl ShardLoop {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<ShardMsg>) {
        while let Some(msg) = rx.blocking_recv() {
            match msg {
                ShardMsg::Open { conn, store_id, payload, headers, out, reply } => {
                    let result = self.open(conn, &store_id, payload, headers, out);
                    let _ = reply.send(result);
                }
                ShardMsg::Frame { conn, store_id, text } => {
                    let Some(store) = self.stores.get_mut(&store_id) else {
                        continue;
                    };
                    if !store.conns.contains(&conn) {
                        continue;
                    }
                    if let Err(e) = store.instance.frame(conn, &text) {
                        self.fail_store(&store_id, e);
                    }
                }
                ShardMsg::Closed { conn, store_id } => self.close(conn, &store_id),
                ShardMsg::Stop => break,
            }
        }
    }

    fn open(
        &mut self,
        conn: u64,
        store_id: &Arc<str>,
        payload: Option<String>,
        headers: Vec<(String, String)>,
        out: ConnSender,
    ) -> Result<(), String> {
        if !self.stores.contains_key(store_id) {
            let instance = self.runtime.instantiate(self.io.clone()).map_err(|e| format!("{e:#}"))?;
            self.stores.insert(store_id.clone(), OpenStore { instance, conns: HashSet::new() });
        }
        let lock = |io: &ShardIo| io.conns.lock().unwrap_or_else(|e| e.into_inner()).insert(conn, out);
        lock(&self.io);
        let Some(store) = self.stores.get_mut(store_id) else {
            return Err("store vanished".into());
        };
        let outcome = store.instance.opened(conn, store_id, payload, headers);
        match outcome {
            Ok(Ok(())) => {
                store.conns.insert(conn);
                Ok(())
            }
            Ok(Err(refusal)) => {
                self.forget_conn(conn);
                self.drop_if_idle(store_id);
                Err(refusal)
            }
            Err(trap) => {
                self.forget_conn(conn);
                let message = format!("{trap:#}");
                self.fail_store(store_id, trap);
                Err(format!("the sync component failed: {message}"))
            }
        }
    }

    fn close(&mut self, conn: u64, store_id: &Arc<str>) {
        self.forget_conn(conn);
        let Some(store) = self.stores.get_mut(store_id) else {
            return;
        };
        if !store.conns.remove(&conn) {
            return;
        }
        if let Err(e) = store.instance.closed(conn) {
            self.fail_store(store_id, e);
            return;
        }
        self.drop_if_idle(store_id);
    }

    fn forget_conn(&self, conn: u64) {
        self.io.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&conn);
    }

    /// A store without connections gives its instance back; the next connection reopens
    /// it from storage.
    fn drop_if_idle(&mut self, store_id: &Arc<str>) {
        if self.stores.get(store_id).is_some_and(|s| s.conns.is_empty()) {
            self.stores.remove(store_id);
        }
    }

    /// The component trapped: its state is gone. Close the store's connections (clients
    /// reconnect and resync from storage) and drop the instance.
    fn fail_store(&mut self, store_id: &Arc<str>, error: anyhow::Error) {
        tracing::error!(store_id = %store_id, error = %anyhow!(error), "sync component trapped; closing the store's connections");
        let Some(store) = self.stores.remove(store_id) else {
            return;
        };
        let mut conns = self.io.conns.lock().unwrap_or_else(|e| e.into_inner());
        for conn in store.conns {
            if let Some(tx) = conns.remove(&conn) {
                let _ = tx.send(Outgoing::Close(1011, "internal error in the sync component".into()));
            }
        }
    }
}
