//! `@livestore/sync-cf`'s documented `validatePayload` token check as a hook: a connection must present the operator's token
//! (`--hook-var AUTH_TOKEN=…`), in the sync payload's `authToken` or an
//! `Authorization: Bearer …` header. Without a configured token every connection is refused
//! (fail closed).

use presented_token::presented_token;

/// Equal without an early exit on the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

pub fn check(expected: Option<&str>, payload_json: Option<&str>, headers: &[(String, String)]) -> Result<(), String> {
    let Some(expected) = expected.filter(|t| !t.is_empty()) else {
        return Err("static-token hook: no token configured (--hook-var AUTH_TOKEN=…)".to_string());
    };
    match presented_token(payload_json, headers) {
        Some(token) if same(token.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err("Invalid auth token".to_string()),
        None => Err("Missing auth token: send payload.authToken or Authorization: Bearer".to_string()),
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "payload-validator", path: "../../wit/hooks" });

    struct Hook;

    impl exports::livestore::hooks::validate_payload::Guest for Hook {
        fn validate_payload(
            _store_id: String,
            payload_json: Option<String>,
            headers: Vec<(String, String)>,
        ) -> Result<(), String> {
            let expected = livestore::hooks::config::get("AUTH_TOKEN");
            super::check(expected.as_deref(), payload_json.as_deref(), &headers)
        }
    }

    export!(Hook);
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn the_token_comes_from_the_payload_or_a_bearer_header() {
        let t = Some("insecure-token-change-me");
        assert_eq!(check(t, Some(r#"{"authToken":"insecure-token-change-me"}"#), &[]), Ok(()));
        let bearer = vec![("authorization".to_string(), "Bearer insecure-token-change-me".to_string())];
        assert_eq!(check(t, None, &bearer), Ok(()));
        assert_eq!(check(t, Some(r#"{"authToken":"nope"}"#), &bearer), Err("Invalid auth token".into()));
        assert!(check(t, None, &[]).unwrap_err().contains("Missing"));
        assert!(check(None, Some(r#"{"authToken":"x"}"#), &[]).unwrap_err().contains("no token configured"));
    }
}
