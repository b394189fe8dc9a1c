//! `post(url, content_type, body)` over `wasi:http/outgoing-handler`: what the webhook hook
//! needs, in one place. The host decides which hosts are reachable (`--hook-allow-host`).

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

/// Split `http(s)://authority/path?query`.
pub fn split_url(url: &str) -> Result<(bool, &str, &str), String> {
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("not an http(s) URL: {url:?}"));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("URL without a host: {url:?}"));
    }
    Ok((https, authority, path))
}

/// POST `body`; the response status, or why it failed.
pub fn post(url: &str, content_type: &str, body: &[u8]) -> Result<u16, String> {
    let (https, authority, path) = split_url(url)?;
    let headers = Fields::from_list(&[("content-type".to_string(), content_type.as_bytes().to_vec())])
        .map_err(|e| format!("headers: {e:?}"))?;
    let request = OutgoingRequest::new(headers);
    request.set_method(&Method::Post).map_err(|_| "method".to_string())?;
    request.set_scheme(Some(if https { &Scheme::Https } else { &Scheme::Http })).map_err(|_| "scheme".to_string())?;
    request.set_authority(Some(authority)).map_err(|_| format!("authority {authority:?}"))?;
    request.set_path_with_query(Some(path)).map_err(|_| format!("path {path:?}"))?;
    let outgoing = request.body().map_err(|_| "request body".to_string())?;
    {
        let stream = outgoing.write().map_err(|_| "body stream".to_string())?;
        for chunk in body.chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| format!("writing the body: {e:?}"))?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| format!("finishing the body: {e:?}"))?;
    let response =
        outgoing_handler::handle(request, None).map_err(|e| format!("request to {authority} refused: {e:?}"))?;
    response.subscribe().block();
    match response.get() {
        Some(Ok(Ok(res))) => Ok(res.status()),
        Some(Ok(Err(e))) => Err(format!("request to {authority} failed: {e:?}")),
        Some(Err(())) | None => Err(format!("request to {authority}: no response")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        assert_eq!(super::split_url("http://127.0.0.1:9/hook?x=1"), Ok((false, "127.0.0.1:9", "/hook?x=1")));
        assert_eq!(super::split_url("https://example.com"), Ok((true, "example.com", "/")));
        assert!(super::split_url("ftp://x").is_err());
        assert!(super::split_url("http:///x").is_err());
    }
}
