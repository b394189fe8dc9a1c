//! The LiveStore HTTP transport: one RPC request per POST body; the reply is the JSON array
//! of every response message, gzipped when the client accepts it and it is worth it.

use super::admit::Admitted;
use super::error::EdgeError;
use super::state::{ask, full, EdgeState, HttpResponse};
use crate::shard::ShardMsg;
use crate::telemetry::HTTP_REQUESTS;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{Request, Response};
use std::sync::Arc;

/// Responses smaller than this are sent as they are.
const GZIP_FROM_BYTES: usize = 1024;

pub async fn handle(
    req: Request<Incoming>,
    admitted: Admitted,
    state: Arc<EdgeState>,
) -> Result<HttpResponse, EdgeError> {
    metrics::counter!(HTTP_REQUESTS).increment(1);
    let gzip = req
        .headers()
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let limit = state.config.max_frame_bytes;
    // The body has the send timeout to arrive: a byte-a-second body must not hold its socket.
    let deadline = state.config.send_timeout;
    let body = tokio::time::timeout(deadline, Limited::new(req.into_body(), limit).collect())
        .await
        .map_err(|_| {
            EdgeError::RequestTimeout(format!("the request body did not arrive within {} s", deadline.as_secs()))
        })?
        .map_err(|e| EdgeError::PayloadTooLarge(format!("request body over {limit} bytes: {e}")))?
        .to_bytes();
    let body =
        String::from_utf8(body.to_vec()).map_err(|_| EdgeError::BadRequest("request body is not UTF-8".into()))?;
    let store_id: Arc<str> = admitted.store_id.into();
    let shard = state.shards.route(&store_id);
    let payload = admitted.info.payload;
    let json = ask(shard, |reply| ShardMsg::Http { store_id: store_id.clone(), payload, body, reply })
        .await?
        .map_err(EdgeError::Internal)?;
    let mut res = if gzip && json.len() > GZIP_FROM_BYTES {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        match enc.write_all(json.as_bytes()).and_then(|_| enc.finish()) {
            Ok(zipped) => {
                let mut res = Response::new(full(Bytes::from(zipped)));
                res.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                res
            }
            Err(_) => Response::new(full(Bytes::from(json))),
        }
    } else {
        Response::new(full(Bytes::from(json)))
    };
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(res)
}
