//! The admin API's streamed answers: a store's export (JSON lines, read a page at a time from
//! its owner, so memory stays bounded whatever the log's size) and a live tail of its
//! committed batches (Server-Sent Events).

use super::super::error::EdgeError;
use super::super::state::{Body, BodyError, EdgeState, HttpResponse};
use super::api::ask_owner;
use crate::admin_tail::Tail;
use crate::shard::AdminAction;
use crate::store_admin::{ExportHeader, StoreInfo};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use hyper::Response;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPage {
    backend_id: String,
    events: Vec<Box<serde_json::value::RawValue>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Seq {
    seq_num: i64,
}

/// Events per read from the store's owner while exporting.
const EXPORT_PAGE: u32 = 1000;
/// An SSE comment this often keeps proxies from closing a quiet tail.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A body fed by a task through a small channel: the task waits while the client is slow. An
/// `Err` cuts the response off (the client sees it incomplete).
fn channel_body() -> (mpsc::Sender<Result<Bytes, BodyError>>, Body) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, BodyError>>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((chunk.map(Frame::data), rx))
    });
    (tx, StreamBody::new(stream).boxed_unsync())
}

/// A file name for `Content-Disposition` made of the id's safe characters.
fn file_name(store_id: &str) -> String {
    let safe: String =
        store_id.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    format!("{safe}.jsonl")
}

/// `GET /admin/stores/{id}/export`: the header line, then every event up to the head the
/// header names (pushes during the export are not included), as `livestore-sync import` reads.
pub async fn export(state: Arc<EdgeState>, store_id: Arc<str>) -> Result<HttpResponse, EdgeError> {
    let info: StoreInfo = serde_json::from_str(&ask_owner(&state, &store_id, AdminAction::Info).await?)
        .map_err(|e| EdgeError::Internal(format!("store info: {e}")))?;
    let header = serde_json::to_string(&ExportHeader::of(&info)).map_err(|e| EdgeError::Internal(e.to_string()))?;
    let (tx, body) = channel_body();
    let name = file_name(&store_id);
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(header + "\n"))).await.is_err() {
            return;
        }
        // Any failure cuts the download off; an importer also refuses a file that ends before
        // the head its header names.
        let stop = |why: String| {
            tracing::warn!(store_id = &*store_id, why, "export stopped");
            Err::<Bytes, BodyError>(format!("export of {store_id:?} stopped: {why}").into())
        };
        let mut after = 0;
        while after < info.head {
            let page = match ask_owner(&state, &store_id, AdminAction::Events { after, limit: EXPORT_PAGE }).await {
                Ok(page) => page,
                Err(e) => {
                    let _ = tx.send(stop(e.message().to_string())).await;
                    return;
                }
            };
            let page = match serde_json::from_str::<RawPage>(&page) {
                Ok(page) if page.backend_id == info.backend_id => page,
                Ok(_) => {
                    let _ = tx.send(stop("the store was reset meanwhile".into())).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(stop(format!("a page was not JSON: {e}"))).await;
                    return;
                }
            };
            let mut chunk = String::new();
            let mut last = None;
            for e in &page.events {
                // Only the seqNum is read; the event goes out byte for byte.
                let Ok(Seq { seq_num }) = serde_json::from_str::<Seq>(e.get()) else { return };
                if seq_num > info.head {
                    break;
                }
                chunk.push_str(e.get());
                chunk.push('\n');
                last = Some(seq_num);
            }
            match last {
                Some(last) if last > after => after = last,
                _ => {
                    let _ =
                        tx.send(stop(format!("no events after seqNum {after}, below the head {}", info.head))).await;
                    return;
                }
            }
            if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
        }
    });
    let mut res = Response::new(body);
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// `GET /admin/stores/{id}/tail`: Server-Sent Events. `ready` with the head when following
/// starts, then `events` (a JSON array) per committed batch, `reset` when the store is reset,
/// and `lagged` if this follower fell more than a few hundred batches behind.
pub async fn tail(state: Arc<EdgeState>, store_id: Arc<str>) -> Result<HttpResponse, EdgeError> {
    // Follow first, then read the head: no batch can fall between the two.
    let mut batches = state.tails.follow(&store_id);
    let info: serde_json::Value = serde_json::from_str(&ask_owner(&state, &store_id, AdminAction::Info).await?)
        .map_err(|e| EdgeError::Internal(format!("store info: {e}")))?;
    let (tx, body) = channel_body();
    let mut shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let ready = serde_json::json!({ "storeId": &*store_id, "head": info["head"], "backendId": info["backendId"] });
        if tx.send(Ok(Bytes::from(format!("event: ready\ndata: {ready}\n\n")))).await.is_err() {
            return;
        }
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.tick().await;
        loop {
            let message = tokio::select! {
                got = batches.recv() => match got {
                    Ok(Tail::Batch(json)) => format!("event: events\ndata: {json}\n\n"),
                    Ok(Tail::Reset { backend_id }) => {
                        format!("event: reset\ndata: {}\n\n", serde_json::json!({ "backendId": &*backend_id }))
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        format!("event: lagged\ndata: {}\n\n", serde_json::json!({ "missedBatches": missed }))
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = keep_alive.tick() => ": keep-alive\n\n".to_string(),
                _ = shutdown.changed() => return,
            };
            if tx.send(Ok(Bytes::from(message))).await.is_err() {
                return;
            }
        }
    });
    let mut res = Response::new(body);
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The most an import request body may carry: it is spooled to disk first, not held in memory.
pub const MAX_IMPORT_BYTES: u64 = 4 << 30;

/// Removes the spooled file however the import ends.
struct Spool(std::path::PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `POST /admin/stores/{id}/import?replace=true&backendId=new`: a JSON-lines body (what the
/// export and `livestore-sync export` write), checked and committed as `livestore-sync import`
/// does. The body is written to a file in the data directory as it arrives, then the store's
/// owner imports it in one transaction and disconnects the store's clients.
pub async fn import(
    req: hyper::Request<hyper::body::Incoming>,
    state: Arc<EdgeState>,
    store_id: Arc<str>,
) -> Result<HttpResponse, EdgeError> {
    use crate::shard::ShardMsg;
    use crate::store_admin::ImportBackendId;
    use crate::sync_params::query_param;
    let query = req.uri().query().map(str::to_string);
    let replace = match query_param(query.as_deref(), "replace").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(EdgeError::BadRequest(format!("replace={other:?}: expected true or false"))),
    };
    let backend = match query_param(query.as_deref(), "backendId").as_deref() {
        None | Some("file") => ImportBackendId::FromFile,
        Some("new") => ImportBackendId::New,
        Some(other) => return Err(EdgeError::BadRequest(format!("backendId={other:?}: expected file or new"))),
    };
    let spool = Spool(state.config.data_dir.join(format!("import-{}.jsonl.part", nanoid::nanoid!(12))));
    let spooling =
        |e: std::io::Error| EdgeError::Internal(format!("spooling the import to {}: {e}", spool.0.display()));
    let mut file = std::fs::File::create(&spool.0).map_err(spooling)?;
    let mut body = req.into_body();
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| EdgeError::BadRequest(format!("reading the import body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        size += data.len() as u64;
        if size > MAX_IMPORT_BYTES {
            return Err(EdgeError::PayloadTooLarge(format!("an import may have at most {MAX_IMPORT_BYTES} bytes")));
        }
        // Disk writes off the async threads.
        file = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            file.write_all(&data).map(|()| file)
        })
        .await
        .map_err(|e| EdgeError::Internal(format!("spooling the import: {e}")))?
        .map_err(spooling)?;
    }
    drop(file);
    let shard = state.shards.route(&store_id);
    let file = spool.0.clone();
    let reply = super::super::state::ask(shard, |reply| ShardMsg::Import {
        store_id: store_id.clone(),
        file,
        replace,
        backend,
        reply,
    })
    .await?;
    Ok(super::api::json_text_response(reply?))
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn download_names_keep_only_safe_characters() {
        assert_eq!(file_name("my-store_1.a"), "my-store_1.a.jsonl");
        assert_eq!(file_name("a\"b/c d"), "a_b_c_d.jsonl");
    }
}
