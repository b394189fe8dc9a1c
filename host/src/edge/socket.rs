//! WebSockets: registering an admitted connection with its store's owner, switching
//! protocols, and the pump that moves frames between the socket and the owner.

use super::admit::Admitted;
use super::auth_gate::authenticate;
use super::error::EdgeError;
use super::state::{ask, full, EdgeState, HttpResponse};
use crate::conn_queue::{conn_queue, ConnReceiver, ConnSender};
use crate::runtime::Outgoing;
use crate::runtime::Protocol;
use crate::shard::{ConnMeta, ShardMsg};
use crate::telemetry::{CONNECTIONS_REFUSED, OPEN_CONNECTIONS};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Per-socket read buffer (see `accept`).
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Register the connection with its store's owner, then switch protocols. A simple-protocol
/// socket that still has to authenticate switches first and registers only once it has
/// (`auth_gate.rs`).
pub async fn accept(
    mut req: Request<Incoming>,
    admitted: Admitted,
    state: Arc<EdgeState>,
) -> Result<HttpResponse, EdgeError> {
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).map(|k| derive_accept_key(k.as_bytes())) else {
        return Err(EdgeError::BadRequest("Missing Sec-WebSocket-Key header".into()));
    };
    // Counted from here; the socket task (or the early returns below) give the places back.
    let slot = Counted::take(&state.open_sockets, state.config.max_connections, "max-connections")
        .ok_or_else(|| EdgeError::Unavailable("Too many connections; try again later".into()))?;
    let Some(client_slot) = state.sockets_per_client.take(admitted.client_ip) else {
        metrics::counter!(CONNECTIONS_REFUSED, "reason" => "per-client").increment(1);
        return Err(EdgeError::TooManyRequests(format!(
            "Too many connections from {}; at most {} at once",
            admitted.client_ip, state.config.max_connections_per_client
        )));
    };
    let conn = state.next_conn.fetch_add(1, Ordering::Relaxed);
    let client_ip = admitted.client_ip;
    let store_id: Arc<str> = admitted.store_id.into();
    let (out_tx, out_rx) = conn_queue(&state.queue_budget, conn, state.config.max_queue_bytes);
    let shard = state.shards.route(&store_id).clone();
    let authenticated = admitted.info.authenticated;
    let meta = ConnMeta {
        client_id: admitted.info.client_id.clone(),
        protocol: match admitted.info.protocol {
            Protocol::Livestore => "livestore",
            Protocol::Simple => "simple",
        },
        transport: "ws",
        peer: client_ip.to_string(),
        connected_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default(),
    };
    let mut info = Some(admitted.info);
    let gate = match (&state.config.auth_token, authenticated) {
        (Some(token), false) => {
            let waiting = Counted::take(&state.unauthenticated, state.config.max_unauthenticated, "unauthenticated")
                .ok_or_else(|| EdgeError::Unavailable("Too many connections waiting to authenticate".into()))?;
            Some((token.clone(), waiting))
        }
        _ => {
            let (out, info) = (out_tx.clone(), info.take().ok_or_else(|| EdgeError::Internal("no open info".into()))?);
            let meta = meta.clone();
            ask(&shard, |reply| ShardMsg::Open { conn, store_id: store_id.clone(), info, meta, out, reply })
                .await?
                .map_err(EdgeError::BadRequest)?;
            None
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    // tungstenite zero-fills its whole read buffer on every read: the 128 KiB default made each
    // small Ack cost a 128 KiB memset (30% of CPU with 1,000 live pullers) and 128 KiB of RSS
    // per idle socket. Larger frames still grow the buffer as needed.
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(state.config.max_frame_bytes))
        .max_frame_size(Some(state.config.max_frame_bytes));
    let shutdown = state.shutdown.clone();
    let limits = SocketLimits {
        send_timeout: state.config.send_timeout,
        idle_timeout: state.config.idle_timeout,
        frames_in_flight: state.config.max_frames_in_flight,
    };
    let auth_timeout = state.config.auth_timeout;
    state.tracker.spawn(async move {
        let _slots = (slot, client_slot);
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                if gate.is_none() {
                    let _ = shard.send(ShardMsg::Closed { conn, store_id });
                }
                return;
            }
        };
        let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config)).await;
        if let (Some((token, waiting)), Some(mut info)) = (gate, info) {
            let authenticated = authenticate(&mut ws, &token, auth_timeout).await;
            drop(waiting);
            if !authenticated {
                return;
            }
            info.authenticated = true;
            let out = out_tx.clone();
            let opened =
                ask(&shard, |reply| ShardMsg::Open { conn, store_id: store_id.clone(), info, meta, out, reply }).await;
            if let Err(reason) = opened.map_err(|e| format!("{e:?}")).and_then(|r| r) {
                let frame = serde_json::json!({ "type": "error", "code": "unavailable", "message": reason });
                let _ = ws.send(Message::text(frame.to_string())).await;
                let close = CloseFrame { code: CloseCode::Again, reason: "store unavailable".into() };
                let _ = ws.send(Message::Close(Some(close))).await;
                return;
            }
        }
        metrics::gauge!(OPEN_CONNECTIONS).increment(1.0);
        tracing::info!(conn, store_id = &*store_id, peer = %client_ip, "connection opened");
        let pump = Pump { conn, store_id: store_id.clone(), shard: shard.clone(), limits };
        pump.run(ws, out_tx, out_rx, shutdown).await;
        metrics::gauge!(OPEN_CONNECTIONS).decrement(1.0);
        tracing::info!(conn, store_id = &*store_id, "connection closed");
        let _ = shard.send(ShardMsg::Closed { conn, store_id });
    });
    let mut res = Response::new(full(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&key) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    Ok(res)
}

/// A place for one more frame of this connection in its store's queue; `None` when the server
/// is shutting down meanwhile.
async fn next_permit(
    in_flight: &Arc<Semaphore>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    tokio::select! {
        permit = in_flight.clone().acquire_owned() => permit.ok(),
        _ = shutdown.changed() => None,
    }
}

pub(super) type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// One place under a server-wide count (open sockets, sockets waiting to authenticate);
/// dropping it gives the place back.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn take(count: &Arc<AtomicUsize>, limit: usize, reason: &'static str) -> Option<Counted> {
        if count.fetch_add(1, Ordering::AcqRel) >= limit {
            count.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(1);
            return None;
        }
        Some(Counted(count.clone()))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Clone, Copy)]
struct SocketLimits {
    send_timeout: Duration,
    idle_timeout: Option<Duration>,
    /// Frames waiting for the store before this socket is no longer read.
    frames_in_flight: usize,
}

/// One WebSocket's pump: frames in → the store's shard; queued frames out → the socket.
struct Pump {
    conn: u64,
    store_id: Arc<str>,
    shard: mpsc::UnboundedSender<ShardMsg>,
    limits: SocketLimits,
}

impl Pump {
    async fn run(self, ws: Socket, out_tx: ConnSender, mut out_rx: ConnReceiver, mut shutdown: watch::Receiver<bool>) {
        let Pump { conn, store_id, shard, limits } = self;
        let (mut sink, mut stream) = ws.split();
        let writer = async move {
            while let Some(out) = out_rx.recv().await {
                let (msg, last) = match out {
                    Outgoing::Text(t) => (Message::text(t), false),
                    Outgoing::Close(code, reason) => {
                        tracing::info!(conn, code, reason = %reason, "closing a connection");
                        (Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into() })), true)
                    }
                };
                // A client that does not read must not hold the writer (and its memory) forever.
                match tokio::time::timeout(limits.send_timeout, sink.send(msg)).await {
                    Ok(Ok(())) if !last => {}
                    Ok(Ok(())) => break,
                    Ok(Err(_)) => return,
                    Err(_) => {
                        tracing::info!(conn, "dropping a connection: a socket write timed out");
                        return;
                    }
                }
            }
            let _ = tokio::time::timeout(limits.send_timeout, sink.close()).await;
        };
        let store_for_reader = store_id.clone();
        let shard_for_reader = shard.clone();
        let reader = async move {
            let store_id = store_for_reader;
            let shard = shard_for_reader;
            let idle = limits.idle_timeout.unwrap_or(Duration::from_secs(365 * 24 * 3600));
            // Each frame holds a permit until its store has handled it: a client that sends
            // faster than its store works waits here (TCP backpressure) instead of growing the
            // shard's queue and delaying every other store on it.
            let in_flight = Arc::new(Semaphore::new(limits.frames_in_flight));
            let idle_timer = tokio::time::sleep(idle);
            tokio::pin!(idle_timer);
            loop {
                tokio::select! {
                    msg = stream.next() => {
                        idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
                        match msg {
                            Some(Ok(Message::Text(t))) => {
                                if out_tx.ignores(t.as_str()) {
                                    continue;
                                }
                                tracing::debug!(conn, frame = %crate::redact::redact_frame(t.as_str()), "frame in");
                                let Some(permit) = next_permit(&in_flight, &mut shutdown).await else { break };
                                let frame = ShardMsg::Frame { conn, store_id: store_id.clone(), text: t.as_str().to_owned(), permit, received: Instant::now() };
                                if shard.send(frame).is_err() { break; }
                            }
                            Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                                Ok(text) => {
                                    let Some(permit) = next_permit(&in_flight, &mut shutdown).await else { break };
                                    let _ = shard.send(ShardMsg::Frame { conn, store_id: store_id.clone(), text, permit, received: Instant::now() });
                                }
                                Err(_) => { out_tx.close(1003, "binary frames must be UTF-8 JSON"); break; }
                            },
                            Some(Ok(Message::Close(_))) | None => break,
                            Some(Ok(_)) => {}
                            Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(e))) => {
                                tracing::info!(conn, store_id = &*store_id, error = %e, "closing a connection: frame too large");
                                out_tx.kill(1009, format!("frame too large: {e}"));
                                break;
                            }
                            Some(Err(e)) => { tracing::debug!(conn, error = %e, "websocket read error"); break; }
                        }
                    }
                    _ = &mut idle_timer => {
                        out_tx.close(1001, format!("idle for {} s", idle.as_secs()));
                        break;
                    }
                    _ = shutdown.changed() => {
                        out_tx.close(1001, "server shutting down");
                        break;
                    }
                }
            }
        };
        tokio::pin!(writer);
        tokio::pin!(reader);
        tokio::select! {
            _ = &mut writer => {}
            _ = &mut reader => {
                // The shard drops its sender on Closed; then the writer drains and ends.
                let _ = shard.send(ShardMsg::Closed { conn, store_id: store_id.clone() });
                let _ = tokio::time::timeout(limits.send_timeout, &mut writer).await;
            }
        }
        let _ = shard.send(ShardMsg::Closed { conn, store_id });
    }
}
