//! Test harness: an in-process livestore-sync server on an ephemeral port with its own data
//! directory, and a raw WebSocket client that speaks JSON frames.

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use livestore_sync::{RunningServer, ServerConfig};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod binary;
pub mod cdp;
pub mod conformance;
pub mod hook_builds;
pub mod postgres;
pub mod workerd;

pub const TOKEN: &str = "insecure-token-change-me";
/// How long a test waits for a frame that must arrive.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// A change to the test server's configuration.
type ConfigTweak = Box<dyn FnOnce(&mut ServerConfig) + Send>;

/// How a [`TestServer`] starts: by default on a fresh data directory, requiring [`TOKEN`],
/// with two shards.
pub struct TestServerBuilder {
    data_dir: Option<PathBuf>,
    token: Option<String>,
    tweaks: Vec<ConfigTweak>,
}

impl TestServerBuilder {
    /// Use (and keep) this data directory instead of a fresh one.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    /// Keep the event logs in this Postgres database instead of the data directory.
    pub fn postgres(self, url: &str) -> Self {
        let pg = livestore_sync::storage::postgres::PgConfig::new(url);
        self.config(move |c| c.postgres = Some(pg))
    }

    /// The auth token to require (`None`: an open server).
    pub fn token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(str::to_string);
        self
    }

    /// Change the test configuration.
    pub fn config(mut self, tweak: impl FnOnce(&mut ServerConfig) + Send + 'static) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    pub async fn start(self) -> Result<TestServer> {
        let (tmp, data_dir) = match self.data_dir {
            Some(dir) => (None, dir),
            None => {
                let tmp = tempfile::tempdir()?;
                let dir = tmp.path().to_path_buf();
                (Some(tmp), dir)
            }
        };
        let mut config = ServerConfig {
            port: 0,
            data_dir: data_dir.clone(),
            auth_token: self.token,
            shards: 2,
            ..ServerConfig::default()
        };
        for tweak in self.tweaks {
            tweak(&mut config);
        }
        let server = livestore_sync::start(config).await?;
        let addr = server.local_addr();
        Ok(TestServer { server: Some(server), addr, data_dir, _tmp: tmp })
    }
}

impl TestServer {
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder { data_dir: None, token: Some(TOKEN.to_string()), tweaks: Vec::new() }
    }

    /// A server requiring [`TOKEN`], on a fresh data directory.
    pub async fn start() -> Result<TestServer> {
        Self::builder().start().await
    }

    pub fn http_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn endpoint(&self) -> conformance::Endpoint {
        conformance::Endpoint { addr: self.addr }
    }

    pub fn ws_base(&self) -> String {
        self.endpoint().ws_base()
    }

    /// The URL the real client builds: payload JSON encoded twice.
    pub fn sync_url(&self, store_id: &str, token: &str) -> String {
        self.endpoint().sync_url(store_id, token)
    }

    pub async fn connect(&self, store_id: &str) -> Result<WsClient> {
        self.endpoint().connect(store_id).await
    }

    pub async fn stop(&mut self) -> Result<()> {
        if let Some(s) = self.server.take() {
            s.shutdown().await?;
        }
        Ok(())
    }
}

/// The WebSocket URL the real client builds for `ws_base`: payload JSON encoded twice.
pub fn sync_url(ws_base: &str, store_id: &str, token: &str) -> String {
    let payload = json!({ "authToken": token }).to_string();
    let once = urlencode(&payload);
    format!("{ws_base}/?storeId={}&payload={}&transport=ws", urlencode(store_id), urlencode(&once))
}

/// Run one `node --test` file of tests/client (the real LiveStore client) against a server;
/// fails unless every test passed, returns node's stdout.
pub async fn node_test(file: &str, ws_base: &str, http_base: &str) -> Result<String> {
    node_test_with(file, &[("LIVESTORE_SYNC_URL", ws_base), ("LIVESTORE_SYNC_HTTP_URL", http_base)]).await
}

/// [`node_test`] with the environment given (the token is always set).
pub async fn node_test_with(file: &str, env: &[(&str, &str)]) -> Result<String> {
    let client_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("client");
    if !client_dir.join("node_modules/@livestore/sync-cf").is_dir() {
        bail!(
            "the real client is not installed: run `npm ci --prefix {}` (scripts/test.sh does)",
            client_dir.display()
        );
    }
    let output = tokio::process::Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg(file)
        .current_dir(&client_dir)
        .envs(env.iter().copied())
        .env("LIVESTORE_SYNC_TOKEN", TOKEN)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running node (Node 20 is required for the real-client test)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    if !output.status.success() {
        bail!("the real client's tests ({file}) failed:\n{stdout}\n{stderr}");
    }
    Ok(stdout.to_string())
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl WsClient {
    pub async fn connect(url: &str) -> Result<WsClient> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.with_context(|| format!("connecting to {url}"))?;
        Ok(WsClient { ws, next_id: 0 })
    }

    /// A fresh request id (a decimal string, as the real client sends).
    pub fn id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.ws.send(Message::text(text.to_string())).await.context("sending a frame")
    }

    pub async fn send(&mut self, v: &Value) -> Result<()> {
        self.send_text(&v.to_string()).await
    }

    /// The next text frame as JSON; fails on close or after `FRAME_TIMEOUT`.
    pub async fn recv(&mut self) -> Result<Value> {
        self.recv_within(FRAME_TIMEOUT).await?.ok_or_else(|| anyhow!("no frame within {FRAME_TIMEOUT:?}"))
    }

    /// Nothing is queued for this LiveStore connection: an empty push (answered by the
    /// store's owner after everything sent to this connection before it) is answered first.
    /// Deterministic, unlike waiting for a while and seeing nothing.
    pub async fn assert_quiet(&mut self, store_id: &str) -> Result<()> {
        let id = format!("quiet-{}", self.id());
        self.send(&push_request(&id, store_id, Vec::new(), None)).await?;
        let next = self.recv().await?;
        if !(is_push_ack(&next) && next["requestId"] == id.as_str()) {
            bail!("expected nothing before the probe's ack, got {next}");
        }
        Ok(())
    }

    /// [`WsClient::assert_quiet`] for the simple protocol: a `ping` is answered with `pong`
    /// after everything queued before it.
    pub async fn assert_quiet_simple(&mut self) -> Result<()> {
        self.send(&json!({ "type": "ping" })).await?;
        let next = self.recv().await?;
        if next != json!({ "type": "pong" }) {
            bail!("expected nothing before the pong, got {next}");
        }
        Ok(())
    }

    /// The next text frame within `d`, or `None` if none arrived.
    pub async fn recv_within(&mut self, d: Duration) -> Result<Option<Value>> {
        match self.recv_text_within(d).await? {
            None => Ok(None),
            Some(text) => Ok(Some(serde_json::from_str(&text).context("server frame is not JSON")?)),
        }
    }

    /// The next text frame as the server wrote it; fails on close or after `FRAME_TIMEOUT`.
    pub async fn recv_text(&mut self) -> Result<String> {
        self.recv_text_within(FRAME_TIMEOUT).await?.ok_or_else(|| anyhow!("no frame within {FRAME_TIMEOUT:?}"))
    }

    async fn recv_text_within(&mut self, d: Duration) -> Result<Option<String>> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => bail!("connection closed"),
                Ok(Some(m)) => m.context("reading a frame")?,
            };
            match msg {
                Message::Text(t) => return Ok(Some(t.as_str().to_string())),
                Message::Close(frame) => bail!("connection closed by server: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Wait for the close frame (skipping other frames); returns its code.
    pub async fn recv_close(&mut self) -> Result<Option<u16>> {
        Ok(self.recv_close_reason().await?.0)
    }

    /// Wait for the close frame (skipping other frames); returns its code and reason.
    pub async fn recv_close_reason(&mut self) -> Result<(Option<u16>, String)> {
        loop {
            match tokio::time::timeout(FRAME_TIMEOUT, self.ws.next()).await {
                Err(_) => bail!("no close within {FRAME_TIMEOUT:?}"),
                Ok(None) => return Ok((None, String::new())),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Ok(frame.map(|f| (Some(u16::from(f.code)), f.reason.to_string())).unwrap_or_default())
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) => return Ok((None, String::new())),
            }
        }
    }

    pub async fn push(
        &mut self,
        store_id: &str,
        batch: Vec<Value>,
        backend_id: Option<&str>,
    ) -> Result<(String, Value)> {
        let id = self.id();
        self.send(&push_request(&id, store_id, batch, backend_id)).await?;
        Ok((id.clone(), self.recv_for(&id).await?))
    }

    /// Skip frames of other requests (e.g. broadcasts) until one for `id` arrives.
    pub async fn recv_for(&mut self, id: &str) -> Result<Value> {
        loop {
            let f = self.recv().await?;
            if f["requestId"] == id {
                return Ok(f);
            }
        }
    }

    /// Run a non-live pull to its Exit, acking every chunk; returns the chunks' PullResponses.
    pub async fn pull_all(&mut self, store_id: &str, cursor: Option<(&str, i64)>) -> Result<Vec<Value>> {
        let id = self.id();
        self.send(&pull_request(&id, store_id, cursor, false)).await?;
        let mut responses = Vec::new();
        loop {
            let f = self.recv_for(&id).await?;
            match f["_tag"].as_str() {
                Some("Chunk") => {
                    responses.push(f["values"][0].clone());
                    self.send(&ack(&id)).await?;
                }
                Some("Exit") if f["exit"]["_tag"] == "Success" => return Ok(responses),
                _ => bail!("pull failed: {f}"),
            }
        }
    }

    /// All seqNums a full pull returns, with the backend id.
    pub async fn pull_seq_nums(&mut self, store_id: &str) -> Result<(Vec<i64>, String)> {
        let responses = self.pull_all(store_id, None).await?;
        let backend =
            responses.first().map(|r| r["backendId"].as_str().unwrap_or_default().to_string()).unwrap_or_default();
        Ok((responses.iter().flat_map(seq_nums).collect(), backend))
    }

    /// Connect with extra request headers (e.g. `Origin`).
    pub async fn connect_with_headers(url: &str, headers: &[(&str, &str)]) -> Result<WsClient> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request()?;
        for (k, v) in headers {
            req.headers_mut()
                .insert(tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())?, v.parse()?);
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await.with_context(|| format!("connecting to {url}"))?;
        Ok(WsClient { ws, next_id: 0 })
    }

    pub async fn close(mut self) -> Result<()> {
        self.ws.close(None).await.ok();
        Ok(())
    }
}

pub fn event(seq: i64, parent: i64) -> Value {
    json!({
        "name": "todoCreated-v1",
        "args": { "id": format!("todo-{seq}"), "text": format!("event {seq}") },
        "seqNum": seq,
        "parentSeqNum": parent,
        "clientId": "client-raw",
        "sessionId": "client-raw-s1"
    })
}

/// Events `from..=to` forming a chain after `from - 1`.
pub fn chain(from: i64, to: i64) -> Vec<Value> {
    (from..=to).map(|s| event(s, s - 1)).collect()
}

fn option(v: Option<Value>) -> Value {
    match v {
        None => json!({ "_tag": "None" }),
        Some(value) => json!({ "_tag": "Some", "value": value }),
    }
}

pub fn push_request(id: &str, store_id: &str, batch: Vec<Value>, backend_id: Option<&str>) -> Value {
    json!({
        "_tag": "Request", "id": id, "tag": "SyncWsRpc.Push",
        "payload": { "storeId": store_id, "payload": { "authToken": TOKEN }, "batch": batch, "backendId": option(backend_id.map(|b| json!(b))) },
        "traceId": "976d0000000000000000000000000000", "spanId": "9f4f000000000000", "sampled": true, "headers": []
    })
}

pub fn pull_request(id: &str, store_id: &str, cursor: Option<(&str, i64)>, live: bool) -> Value {
    let cursor = option(cursor.map(|(b, n)| json!({ "backendId": b, "eventSequenceNumber": n })));
    json!({ "_tag": "Request", "id": id, "tag": "SyncWsRpc.Pull", "payload": { "storeId": store_id, "live": live, "cursor": cursor }, "headers": [] })
}

pub fn ack(id: &str) -> Value {
    json!({ "_tag": "Ack", "requestId": id })
}

pub fn interrupt(id: &str) -> Value {
    json!({ "_tag": "Interrupt", "requestId": id })
}

/// The seqNums of one PullResponse.
pub fn seq_nums(response: &Value) -> Vec<i64> {
    response["batch"]
        .as_array()
        .map(|b| b.iter().filter_map(|i| i["eventEncoded"]["seqNum"].as_i64()).collect())
        .unwrap_or_default()
}

/// `Exit` `Failure` `Fail` error object of a frame, if it is one.
pub fn failure_error(frame: &Value) -> Option<&Value> {
    (frame["_tag"] == "Exit" && frame["exit"]["_tag"] == "Failure" && frame["exit"]["cause"]["_tag"] == "Fail")
        .then(|| &frame["exit"]["cause"]["error"])
}

/// The `cause.message` of a failed request's error; empty when the frame is not a failure.
pub fn failure_message(frame: &Value) -> String {
    failure_error(frame).and_then(|e| e["cause"]["message"].as_str()).unwrap_or_default().to_string()
}

pub fn is_push_ack(frame: &Value) -> bool {
    frame["_tag"] == "Exit" && frame["exit"] == json!({ "_tag": "Success", "value": {} })
}

/// A store id no other test uses.
pub fn unique_store(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{}", N.fetch_add(1, Ordering::Relaxed), nanos % 1_000_000_000)
}

/// A plain HTTP/1.1 request over TCP; returns (status, headers+body text).
pub async fn http_request(addr: SocketAddr, request: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.write_all(request.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(FRAME_TIMEOUT, tcp.read_to_end(&mut buf)).await.context("http response timed out")??;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("no HTTP status in {text:?}"))?;
    Ok((status, text))
}

/// POST `body` to `path` (with its query); returns (status, response body).
pub async fn http_post(addr: SocketAddr, path: &str, body: &str) -> Result<(u16, String)> {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, raw) = http_request(addr, &req).await?;
    Ok((status, raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

/// A raw WebSocket upgrade request for `path` (with its query) that closes after the answer,
/// so a refusal's status and body can be read.
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

/// The store-id rule's refusals, the same in every home: an empty id, one over 1,024 bytes,
/// and bytes that are not UTF-8 get a 400 that says why, on the LiveStore WebSocket and HTTP
/// transports and the simple protocol, before anything is stored.
pub async fn assert_bad_store_ids_are_refused(addr: SocketAddr) -> Result<()> {
    let too_long = "a".repeat(1025);
    let cases = [
        ("", "empty"),
        ("%FF", "not valid UTF-8"),
        ("caf%C3", "not valid UTF-8"),
        (too_long.as_str(), "1025 bytes of UTF-8, at most 1024"),
    ];
    for (raw, why) in cases {
        let requests = [
            upgrade_request(&format!("/?storeId={raw}&transport=ws")),
            format!("POST /?storeId={raw}&transport=http HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            upgrade_request(&format!("/websocket?storeId={raw}")),
        ];
        for req in requests {
            let (status, body) = http_request(addr, &req).await?;
            let line = req.lines().next().unwrap_or_default();
            if status != 400 || !body.contains(why) {
                bail!("{line}: expected 400 saying {why:?}, got {status}:\n{body}");
            }
        }
    }
    Ok(())
}

/// A loopback HTTP server that records each request body and answers 200.
pub async fn webhook_sink() -> Result<(u16, tokio::sync::mpsc::UnboundedReceiver<String>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = tokio::io::AsyncReadExt::read(&mut sock, &mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok());
                    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
                    let complete = match len {
                        Some(len) => body.len() >= len,
                        None => !chunked || body.ends_with("0\r\n\r\n"),
                    };
                    if complete {
                        let _ = tx.send(format!("{head}\r\n\r\n{body}"));
                        let _ = tokio::io::AsyncWriteExt::write_all(
                            &mut sock,
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                        return;
                    }
                }
            });
        }
    });
    Ok((port, rx))
}

/// The JSON document in a (possibly chunked) request body.
pub fn json_body(request: &str) -> Result<Value> {
    let body = request.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    let start = body.find('{').context("no JSON in the body")?;
    let end = body.rfind('}').context("no JSON in the body")?;
    Ok(serde_json::from_str(&body[start..=end])?)
}

/// The code blocks of a Markdown document with the given language tag (fences indented or
/// not), each without its trailing whitespace.
pub fn markdown_code_blocks(doc: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in doc.lines() {
        let trimmed = line.trim_start();
        match (&mut current, trimmed.strip_prefix("```")) {
            (None, Some(tag)) => current = Some((tag.trim().to_string(), String::new())),
            (Some((tag, code)), Some(_)) => {
                if tag == lang {
                    blocks.push(code.trim_end().to_string());
                }
                current = None;
            }
            (Some((_, code)), None) => {
                code.push_str(line);
                code.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}
