//! A connection's resumable state, for hosts that may drop a store's instance while its
//! sockets stay open (Cloudflare's WebSocket hibernation). The component hands the host a
//! snapshot whenever it changes (`connections.save-state`); after a wake the host gives each
//! socket's last snapshot back (`handler.resumed`) and the connection continues where it was.
//!
//! Broadcasts never change a snapshot: a caught-up live stream keeps no cursor (it resumes at
//! the head, and only this store's owner writes), and a stream still catching up recounts what
//! is left from its cursor on resume.

use crate::chunks::PullStream;
use crate::core::{Conn, Core, Protocol};
use crate::host::Host;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct ConnSnapshot {
    /// `true`: LiveStore frames; `false`: the simple protocol.
    #[serde(rename = "ls")]
    livestore: bool,
    #[serde(rename = "auth")]
    authenticated: bool,
    #[serde(rename = "client")]
    client_id: String,
    pulls: Vec<StreamSnapshot>,
}

#[derive(Serialize, Deserialize)]
struct StreamSnapshot {
    id: String,
    live: bool,
    /// The catch-up position; absent once the stream is caught up.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    cursor: Option<i64>,
    #[serde(rename = "ack")]
    awaiting_ack: bool,
}

fn snapshot(conn: &Conn) -> String {
    let snap = ConnSnapshot {
        livestore: conn.protocol == Protocol::LiveStore,
        authenticated: conn.authenticated,
        client_id: conn.client_id.clone(),
        pulls: conn
            .pulls
            .iter()
            .map(|p| StreamSnapshot {
                id: p.request_id.clone(),
                live: p.live,
                cursor: (!p.caught_up).then_some(p.cursor),
                awaiting_ack: p.awaiting_ack,
            })
            .collect(),
    };
    serde_json::to_string(&snap).unwrap_or_default()
}

impl Core {
    /// Hand the host `conn`'s snapshot if it changed since the last one it got.
    pub(crate) fn save_snapshot(&mut self, host: &mut dyn Host, conn: u64) {
        let Some(state) = self.conns.get_mut(&conn) else { return };
        let snap = snapshot(state);
        if snap != state.saved {
            host.save_state(conn, &snap);
            state.saved = snap;
        }
    }

    /// Re-create a connection from its last snapshot after the instance was rebuilt.
    pub(crate) fn resume(&mut self, host: &mut dyn Host, conn: u64, saved: &str) -> Result<(), String> {
        let snap: ConnSnapshot =
            serde_json::from_str(saved).map_err(|e| format!("connection {conn}: unreadable saved state: {e}"))?;
        let mut pulls = Vec::with_capacity(snap.pulls.len());
        for p in snap.pulls {
            let (cursor, remaining, caught_up) = match p.cursor {
                Some(cursor) => (cursor, host.count_after(&self.store_id, cursor)?, false),
                None => (self.state.head, 0, true),
            };
            pulls.push(PullStream {
                request_id: p.id,
                live: p.live,
                cursor,
                remaining,
                awaiting_ack: p.awaiting_ack,
                caught_up,
            });
        }
        let protocol = if snap.livestore { Protocol::LiveStore } else { Protocol::Simple };
        self.conns.insert(
            conn,
            Conn {
                protocol,
                authenticated: snap.authenticated,
                client_id: snap.client_id,
                pulls,
                saved: saved.to_string(),
                // Declared afresh at the end of the call that resumed it (the host dropped the
                // old list with the instance).
                ignored: Vec::new(),
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::mem_host::MemHost;
    use crate::{Protocol, StoreSync};

    fn push(id: &str, from: i64, to: i64) -> String {
        let batch: Vec<String> = (from..=to)
            .map(|s| {
                format!(
                    r#"{{"name":"e","args":{{}},"seqNum":{s},"parentSeqNum":{},"clientId":"c","sessionId":"s"}}"#,
                    s - 1
                )
            })
            .collect();
        format!(
            r#"{{"_tag":"Request","id":"{id}","tag":"SyncWsRpc.Push","payload":{{"storeId":"s1","batch":[{}],"backendId":{{"_tag":"None"}}}},"headers":[]}}"#,
            batch.join(",")
        )
    }

    fn pull(id: &str, live: bool) -> String {
        format!(
            r#"{{"_tag":"Request","id":"{id}","tag":"SyncWsRpc.Pull","payload":{{"storeId":"s1","payload":{{}},"cursor":{{"_tag":"None"}},"live":{live}}},"headers":[]}}"#
        )
    }

    fn handle(sync: &mut StoreSync, host: &mut MemHost, conn: u64, frame: &str) {
        sync.frame(host, conn, frame);
        sync.save_snapshot(host, conn);
    }

    #[test]
    fn a_live_pull_survives_a_rebuilt_instance() {
        let mut host = MemHost::default();
        let mut sync = StoreSync::open(&mut host, "s1").expect("open");
        sync.connection_opened(1, Protocol::LiveStore, true, None);
        sync.connection_opened(2, Protocol::LiveStore, true, None);
        handle(&mut sync, &mut host, 2, &push("p1", 1, 3));
        handle(&mut sync, &mut host, 1, &pull("live", true));
        handle(&mut sync, &mut host, 1, r#"{"_tag":"Ack","requestId":"live"}"#);
        let saved = host.saved_state(1).expect("conn 1 saved its state").to_string();
        assert!(saved.contains(r#""id":"live""#), "{saved}");
        let pushes_before = host.saved_state(2).map(str::to_string);

        // The instance is gone (hibernation); storage and sockets stay.
        let mut woken = StoreSync::open(&mut host, "s1").expect("reopen");
        woken.connection_resumed(&mut host, 1, &saved).expect("resume 1");
        woken.connection_resumed(&mut host, 2, pushes_before.as_deref().expect("conn 2 saved")).expect("resume 2");
        host.sent.clear();
        woken.frame(&mut host, 2, &push("p2", 4, 4));
        let to_puller = host.frames_for(1).join("\n");
        assert!(to_puller.contains(r#""seqNum":4"#), "the resumed live pull gets the new event: {to_puller}");
        assert!(!to_puller.contains(r#""seqNum":3"#), "and nothing twice: {to_puller}");
    }

    #[test]
    fn a_catch_up_waiting_for_its_ack_continues_after_a_rebuild() {
        let mut host = MemHost::default();
        let mut sync = StoreSync::open(&mut host, "s1").expect("open");
        sync.connection_opened(1, Protocol::LiveStore, true, None);
        for i in 0..3 {
            handle(&mut sync, &mut host, 1, &push(&format!("p{i}"), i * 100 + 1, i * 100 + 100));
        }
        handle(&mut sync, &mut host, 1, &pull("cu", false));
        let saved = host.saved_state(1).expect("saved").to_string();
        assert!(saved.contains(r#""cursor":100"#), "{saved}");

        let mut woken = StoreSync::open(&mut host, "s1").expect("reopen");
        woken.connection_resumed(&mut host, 1, &saved).expect("resume");
        host.sent.clear();
        woken.frame(&mut host, 1, r#"{"_tag":"Ack","requestId":"cu"}"#);
        let next = host.frames_for(1).join("\n");
        assert!(next.contains(r#""seqNum":101"#) && next.contains(r#""seqNum":200"#), "{next}");
        assert!(!next.contains(r#""seqNum":100,"#), "{next}");
    }

    #[test]
    fn unreadable_saved_state_is_an_error() {
        let mut host = MemHost::default();
        let mut sync = StoreSync::open(&mut host, "s1").expect("open");
        let err = sync.connection_resumed(&mut host, 7, "not json").expect_err("must fail");
        assert!(err.contains("connection 7"), "{err}");
    }
}
