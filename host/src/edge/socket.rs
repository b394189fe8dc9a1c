//! WebSockets: registering an admitted connection with its store's owner, switching
//! protocols, and the pump that moves frames between the socket and the owner.

use super::admit::Admitted;
use super::error::EdgeError;
use super::state::{ask, EdgeState, HttpResponse};
use crate::conn_queue::{conn_queue, ConnReceiver, ConnSender};
use crate::runtime::Outgoing;
use crate::shard::ShardMsg;
use crate::telemetry::{CONNECTIONS_REFUSED, OPEN_CONNECTIONS};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Per-socket read buffer (see `accept`).
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Register the connection with its store's owner, then switch protocols.
pub async fn accept(
    mut req: Request<Incoming>,
    admitted: Admitted,
    state: Arc<EdgeState>,
) -> Result<HttpResponse, EdgeError> {
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).map(|k| derive_accept_key(k.as_bytes())) else {
        return Err(EdgeError::BadRequest("Missing Sec-WebSocket-Key header".into()));
    };
    if state.open_sockets.fetch_add(1, Ordering::AcqRel) >= state.config.max_connections {
        state.open_sockets.fetch_sub(1, Ordering::AcqRel);
        metrics::counter!(CONNECTIONS_REFUSED, "reason" => "max-connections").increment(1);
        return Err(EdgeError::Unavailable("Too many connections; try again later".into()));
    }
    // Counted from here; the socket task (or the early returns below) give the slot back.
    let slot = SocketSlot(state.clone());
    let conn = state.next_conn.fetch_add(1, Ordering::Relaxed);
    let store_id: Arc<str> = admitted.store_id.into();
    let (out_tx, out_rx) = conn_queue(state.config.max_queue_bytes);
    let shard = state.shards.route(&store_id).clone();
    let out = out_tx.clone();
    let info = admitted.info;
    ask(&shard, |reply| ShardMsg::Open { conn, store_id: store_id.clone(), info, out, reply })
        .await?
        .map_err(EdgeError::BadRequest)?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    // tungstenite zero-fills its whole read buffer on every read: the 128 KiB default made each
    // small Ack cost a 128 KiB memset (30% of CPU with 1,000 live pullers) and 128 KiB of RSS
    // per idle socket. Larger frames still grow the buffer as needed.
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(state.config.max_frame_bytes))
        .max_frame_size(Some(state.config.max_frame_bytes));
    let shutdown = state.shutdown.clone();
    let limits = SocketLimits { send_timeout: state.config.send_timeout, idle_timeout: state.config.idle_timeout };
    state.tracker.spawn(async move {
        let _slot = slot;
        metrics::gauge!(OPEN_CONNECTIONS).increment(1.0);
        tracing::info!(conn, store_id = &*store_id, "connection opened");
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config)).await;
                let pump = Pump { conn, store_id: store_id.clone(), shard: shard.clone(), limits };
                pump.run(ws, out_tx, out_rx, shutdown).await;
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
        metrics::gauge!(OPEN_CONNECTIONS).decrement(1.0);
        tracing::info!(conn, store_id = &*store_id, "connection closed");
        let _ = shard.send(ShardMsg::Closed { conn, store_id });
    });
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&key) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    Ok(res)
}

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// One counted WebSocket; dropping it frees the slot.
struct SocketSlot(Arc<EdgeState>);

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.0.open_sockets.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Clone, Copy)]
struct SocketLimits {
    send_timeout: Duration,
    idle_timeout: Option<Duration>,
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
            let idle_timer = tokio::time::sleep(idle);
            tokio::pin!(idle_timer);
            loop {
                tokio::select! {
                    msg = stream.next() => {
                        idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
                        match msg {
                            Some(Ok(Message::Text(t))) => {
                                tracing::debug!(conn, frame = %crate::redact::redact_frame(t.as_str()), "frame in");
                                let frame = ShardMsg::Frame { conn, store_id: store_id.clone(), text: t.as_str().to_owned() };
                                if shard.send(frame).is_err() { break; }
                            }
                            Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                                Ok(text) => { let _ = shard.send(ShardMsg::Frame { conn, store_id: store_id.clone(), text }); }
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
