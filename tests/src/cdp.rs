//! Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for the console's
//! browser test: launch with a throwaway profile, evaluate script in the page, wait for a
//! condition, press keys, resize, take screenshots. Only the few CDP methods the test needs.

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct Browser {
    _child: tokio::process::Child,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Chromium (`$CHROMIUM`, else `chromium` on the PATH) with a `width`×`height` window and
    /// one page attached.
    pub async fn launch(width: u32, height: u32) -> Result<Browser> {
        let bin = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let profile = tempfile::tempdir()?;
        let mut child = tokio::process::Command::new(&bin)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
            .args(["--remote-debugging-port=0", "--hide-scrollbars", "--force-device-scale-factor=1"])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {bin} (Debian: apt-get install chromium; scripts/test.sh does)"))?;
        let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return Ok(url.trim().to_string());
                }
            }
            bail!("chromium exited before listening")
        })
        .await
        .context("chromium did not start within 30 s")??;
        // Keep draining stderr so chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(&url).await.context("connecting to chromium's DevTools")?;
        let mut browser = Browser { _child: child, ws, session: String::new(), next_id: 0, _profile: profile };
        let targets = browser.send(None, "Target.getTargets", json!({})).await?;
        let page = targets["targetInfos"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["targetId"].as_str())
            .context("no page target")?
            .to_string();
        let attached =
            browser.send(None, "Target.attachToTarget", json!({ "targetId": page, "flatten": true })).await?;
        browser.session = attached["sessionId"].as_str().context("no session id")?.to_string();
        browser.call("Page.enable", json!({})).await?;
        browser.call("Runtime.enable", json!({})).await?;
        Ok(browser)
    }

    async fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).await?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .with_context(|| format!("{method}: no answer within 30 s"))?
                .context("DevTools connection closed")??;
            let Message::Text(text) = frame else { continue };
            let v: Value = serde_json::from_str(&text)?;
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    bail!("{method}: {e}");
                }
                return Ok(v["result"].clone());
            }
        }
    }

    /// A CDP method on the page.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let session = self.session.clone();
        self.send(Some(&session), method, params).await
    }

    pub async fn navigate(&mut self, url: &str) -> Result<()> {
        self.call("Page.navigate", json!({ "url": url })).await?;
        Ok(())
    }

    /// Evaluate `expression` in the page (promises awaited); its value as JSON.
    pub async fn eval(&mut self, expression: &str) -> Result<Value> {
        let r = self
            .call("Runtime.evaluate", json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }))
            .await?;
        if let Some(e) = r.get("exceptionDetails") {
            bail!("{expression}: {}", e["exception"]["description"].as_str().unwrap_or(&e.to_string()));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Wait until `expression` is truthy; its value. Fails with `what` after `timeout`.
    pub async fn wait_for(&mut self, expression: &str, what: &str, timeout: Duration) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // A navigation can destroy the context mid-evaluation: just try again.
            let v = self.eval(expression).await.unwrap_or(Value::Null);
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return Ok(v);
            }
            if tokio::time::Instant::now() > deadline {
                let text = self.eval("document.body ? document.body.innerText : ''").await.unwrap_or_default();
                bail!("{what}: not seen within {timeout:?}; the page shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Press and release a key (`Tab`, `Enter`, …) in the focused element.
    pub async fn press(&mut self, key: &str, code: u32) -> Result<()> {
        // Keys that type a character (Enter's "\r" submits a form) need it in the key-down event.
        let text = match key {
            "Enter" => "\r",
            _ => "",
        };
        let down = json!({ "type": "keyDown", "key": key, "code": key, "windowsVirtualKeyCode": code, "text": text });
        self.call("Input.dispatchKeyEvent", down).await?;
        let up = json!({ "type": "keyUp", "key": key, "code": key, "windowsVirtualKeyCode": code });
        self.call("Input.dispatchKeyEvent", up).await?;
        Ok(())
    }

    /// Type text into the focused element, as a keyboard would.
    pub async fn type_text(&mut self, text: &str) -> Result<()> {
        self.call("Input.insertText", json!({ "text": text })).await?;
        Ok(())
    }

    /// Lay the page out as a `width`-pixel-wide viewport (`mobile` for phone widths).
    pub async fn viewport(&mut self, width: u32, height: u32, mobile: bool) -> Result<()> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .await?;
        Ok(())
    }

    /// A PNG of the page (`full_page`: the whole document, not just the viewport) at `path`.
    pub async fn screenshot(&mut self, path: &Path, full_page: bool) -> Result<()> {
        let r =
            self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": full_page })).await?;
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().context("no image data")?)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }
}
