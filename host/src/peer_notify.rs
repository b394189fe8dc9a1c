//! Nodes sharing one Postgres database tell each other about commits through Postgres itself:
//! the transaction that admits a batch (or resets a store) sends a `NOTIFY` on [`CHANNEL`],
//! delivered to every listening node when it commits. Each node keeps one connection
//! `LISTEN`ing and hands each notice to the store's shard, which lets the store's instance read
//! and deliver the new events (or drop a store reset elsewhere). When that connection drops,
//! notices may be lost: after reconnecting, every shard re-syncs its open stores from storage.

use crate::shard::{ShardMsg, Shards};
use crate::storage::postgres::{client_config, connect_hint, tls, PgConfig};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_postgres::AsyncMessage;

pub const CHANNEL: &str = "livestore_sync";

/// A new node id: a server skips notices carrying its own.
pub fn new_node_id() -> String {
    nanoid::nanoid!()
}

/// One notice. `head`: a batch committed up to it; `changed`: the store was reset or replaced.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Notice {
    pub node: String,
    pub store: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed: bool,
}

impl Notice {
    pub fn committed(node: &str, store: &str, head: i64) -> String {
        let n = Notice { node: node.to_string(), store: store.to_string(), head: Some(head), changed: false };
        serde_json::to_string(&n).unwrap_or_default()
    }

    pub fn changed(node: &str, store: &str) -> String {
        let n = Notice { node: node.to_string(), store: store.to_string(), head: None, changed: true };
        serde_json::to_string(&n).unwrap_or_default()
    }
}

/// Listen until shutdown, reconnecting with a growing pause (up to 5 s) while Postgres is away.
pub async fn listen(pg: PgConfig, node: String, shards: Arc<Shards>, mut shutdown: watch::Receiver<bool>) {
    let mut pause = Duration::from_millis(100);
    loop {
        match listen_once(&pg, &node, &shards, &mut shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "listening for other nodes' commits failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// One connection's life: `Ok` at shutdown, `Err` when it failed.
async fn listen_once(
    pg: &PgConfig,
    node: &str,
    shards: &Shards,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let config = client_config(&pg.url).map_err(|e| format!("{e:#}"))?;
    let tls = tls(pg.ca_file.as_deref()).map_err(|e| format!("{e:#}"))?;
    let (client, mut connection) =
        config.connect(tls).await.map_err(|e| format!("connecting: {e}{}", connect_hint(&format!("{e:?}"))))?;
    let (tx, mut notices) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = tx.send(n.payload().to_string());
                }
                Ok(_) => {}
                Err(e) => return format!("{e}"),
            }
        }
        "the connection closed".to_string()
    });
    if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
        driver.abort();
        return Err(format!("LISTEN: {e}"));
    }
    // Whatever was committed before this LISTEN (at start, or while disconnected) was not
    // announced here: catch every open store up.
    shards.broadcast(|| ShardMsg::Resync);
    tracing::info!("listening for other nodes' commits");
    loop {
        tokio::select! {
            notice = notices.recv() => match notice {
                Some(payload) => deliver(shards, node, &payload),
                None => {
                    let why = driver.await.unwrap_or_else(|e| e.to_string());
                    return Err(why);
                }
            },
            _ = shutdown.changed() => {
                driver.abort();
                return Ok(());
            }
        }
    }
}

fn deliver(shards: &Shards, node: &str, payload: &str) {
    let notice: Notice = match serde_json::from_str(payload) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, payload, "ignoring a malformed notice");
            return;
        }
    };
    if notice.node == node {
        return;
    }
    let store_id: Arc<str> = notice.store.into();
    let msg = match notice.head {
        _ if notice.changed => ShardMsg::ChangedElsewhere { store_id: store_id.clone() },
        Some(head) => ShardMsg::LogAdvanced { store_id: store_id.clone(), head },
        None => return,
    };
    let _ = shards.route(&store_id).send(msg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_any_store_id() {
        let id = "team/a b\u{0}\"é";
        let n: Notice = serde_json::from_str(&Notice::committed("n1", id, 42)).unwrap();
        assert_eq!((n.store.as_str(), n.head, n.changed), (id, Some(42), false));
        let n: Notice = serde_json::from_str(&Notice::changed("n1", id)).unwrap();
        assert_eq!((n.head, n.changed), (None, true));
        // The longest store id, escaped at worst, fits NOTIFY's 8,000-byte payload.
        let longest = "\u{1}".repeat(crate::store_id::MAX_STORE_ID_BYTES);
        assert!(Notice::committed(&new_node_id(), &longest, i64::MAX).len() < 8000);
    }
}
