//! Outbound HTTP for hooks (`wasi:http/outgoing-handler`): only to the hosts the operator
//! allowlists (`--hook-allow-host`, none by default, like Spin's `allowed_outbound_hosts`),
//! with the operator's timeouts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

pub struct HttpPolicy {
    hook: String,
    allow: Arc<Vec<String>>,
    timeout: Duration,
}

impl HttpPolicy {
    pub fn new(hook: &str, allow: &[String], timeout: Duration) -> HttpPolicy {
        HttpPolicy { hook: hook.to_string(), allow: Arc::new(allow.to_vec()), timeout }
    }
}

/// Whether `host` (and `port`) matches an allowlist entry: `host`, `host:port`, or `*.domain`.
pub fn host_allowed(allow: &[String], host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    allow.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        let (pattern, want_port) = match entry.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() && !h.is_empty() => (h.to_string(), p.parse::<u16>().ok()),
            _ => (entry.clone(), None),
        };
        let pattern = pattern.trim_start_matches('[').trim_end_matches(']');
        let host_ok = match pattern.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => host == pattern,
        };
        host_ok && want_port.is_none_or(|p| p == port)
    })
}

type SendResult = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let uri = request.uri();
        let https = uri.scheme_str() == Some("https");
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if !host_allowed(&self.allow, &host, port) {
            metrics::counter!(crate::telemetry::HOOK_HTTP_DENIED, "hook" => self.hook.clone()).increment(1);
            tracing::warn!(
                hook = self.hook,
                host,
                port,
                "hook tried to reach a host that is not allowlisted (--hook-allow-host)"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let limit = self.timeout;
        let clamp = |d: Option<Duration>| Some(d.map_or(limit, |d| d.min(limit)));
        let options = options.unwrap_or_default();
        let options = RequestOptions {
            connect_timeout: clamp(options.connect_timeout),
            first_byte_timeout: clamp(options.first_byte_timeout),
            between_bytes_timeout: clamp(options.between_bytes_timeout),
        };
        drop(fut);
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn only_allowlisted_hosts_and_ports_pass() {
        let allow = vec!["127.0.0.1:9000".to_string(), "hooks.example.com".into(), "*.internal.net".into()];
        assert!(host_allowed(&allow, "127.0.0.1", 9000));
        assert!(!host_allowed(&allow, "127.0.0.1", 9001));
        assert!(host_allowed(&allow, "HOOKS.example.com", 443));
        assert!(!host_allowed(&allow, "evil-hooks.example.com", 443));
        assert!(host_allowed(&allow, "a.internal.net", 80));
        assert!(!host_allowed(&allow, "internal.net.evil.com", 80));
        assert!(!host_allowed(&[], "127.0.0.1", 80));
    }
}
