//! Where auth hooks find a connection's token: the sync payload's `authToken` (what the
//! LiveStore client sends), else an `Authorization: Bearer …` header (as curl users send it).

pub fn presented_token(payload_json: Option<&str>, headers: &[(String, String)]) -> Option<String> {
    let from_payload = payload_json
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .and_then(|v| v.get("authToken").and_then(|t| t.as_str()).map(str::to_string));
    from_payload.or_else(|| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| bearer_credentials(v).map(str::to_string))
    })
}

/// The credentials of an `Authorization: Bearer …` value; the scheme name is
/// case-insensitive (RFC 7235 §2.1).
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once([' ', '\t'])?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::presented_token;

    #[test]
    fn the_payload_wins_over_a_bearer_header() {
        let bearer = vec![("Authorization".to_string(), "Bearer b".to_string())];
        assert_eq!(presented_token(Some(r#"{"authToken":"p"}"#), &bearer).as_deref(), Some("p"));
        assert_eq!(presented_token(Some("{}"), &bearer).as_deref(), Some("b"));
        assert_eq!(presented_token(None, &[("authorization".into(), "Basic x".into())]), None);
        assert_eq!(presented_token(None, &[("authorization".into(), "bearer  b ".into())]).as_deref(), Some("b"));
        assert_eq!(presented_token(None, &[("authorization".into(), "BEARER b".into())]).as_deref(), Some("b"));
    }
}
