//! The operator console's files, embedded in the binary: nothing is built or downloaded at run
//! time. A strict Content-Security-Policy: only these files, no inline script or style.

use super::super::error::EdgeError;
use super::super::state::{full, HttpResponse};
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::Response;

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn with_headers(body: &'static str, content_type: &'static str) -> HttpResponse {
    let mut res = Response::new(full(body));
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(HeaderName::from_static("content-security-policy"), HeaderValue::from_static(CSP));
    headers.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    headers.insert(HeaderName::from_static("x-frame-options"), HeaderValue::from_static("DENY"));
    headers.insert(HeaderName::from_static("referrer-policy"), HeaderValue::from_static("no-referrer"));
    res
}

pub fn page() -> HttpResponse {
    with_headers(INDEX, "text/html; charset=utf-8")
}

pub fn is_asset(path: &str) -> bool {
    matches!(path, "/admin/console.js" | "/admin/console.css")
}

pub fn asset(path: &str) -> Result<HttpResponse, EdgeError> {
    match path {
        "/admin/console.js" => Ok(with_headers(SCRIPT, "text/javascript; charset=utf-8")),
        "/admin/console.css" => Ok(with_headers(STYLE, "text/css; charset=utf-8")),
        _ => Err(EdgeError::NotFound(format!("no console file {path}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files_and_stays_small() {
        assert!(INDEX.contains(r#"src="/admin/console.js""#) && INDEX.contains(r#"href="/admin/console.css""#));
        assert!(!INDEX.contains("<script>") && !INDEX.contains("style="), "the CSP forbids inline script and style");
        // The SVG namespace is a name, not a request.
        let script = SCRIPT.replace("http://www.w3.org/2000/svg", "");
        assert!(!script.contains("http://") && !script.contains("https://"), "no third-party requests");
        let weight = INDEX.len() + SCRIPT.len() + STYLE.len();
        assert!(weight < 48 * 1024, "the console weighs {weight} bytes");
    }
}
