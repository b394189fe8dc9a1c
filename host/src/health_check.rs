//! `livestore-sync health`: asks a running server's `/health`, for container health checks and
//! scripts on hosts (or images) without curl. Plain HTTP/1.0 over a blocking socket: one request,
//! one status line.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// GET `url` (an `http://` URL) and succeed only on `200`; the error names what failed.
pub fn check(url: &str, timeout: Duration) -> Result<()> {
    let uri: http::Uri = url.parse().with_context(|| format!("--url {url:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("--url {url:?}: only http:// URLs (the server's own port, not a TLS proxy)");
    }
    let host = uri.host().with_context(|| format!("--url {url:?} names no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let addr = (host.trim_start_matches('[').trim_end_matches(']'), port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    let mut tcp = TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("connecting to {addr}"))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    write!(tcp, "GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n").with_context(|| format!("writing to {addr}"))?;
    let mut answer = Vec::new();
    tcp.take(64 * 1024).read_to_end(&mut answer).with_context(|| format!("reading from {addr}"))?;
    let text = String::from_utf8_lossy(&answer);
    let status = text.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b.trim());
        bail!("{url} answered {}: {body}", if status.is_empty() { "nothing" } else { status });
    }
    Ok(())
}
