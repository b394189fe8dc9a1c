//! Secrets out of log lines. A frame is masked by its structure: every value under a key that
//! names a credential (`token`, `authToken`, `authorization`, `adminSecret`, any case), at any
//! depth, whatever the spacing. Text that is not JSON is masked by a pattern with the same keys.

use regex::Regex;
use serde_json::Value;
use std::sync::OnceLock;

const MASK: &str = "***";
/// Logged frames are cut to this many bytes.
const MAX_LOGGED_BYTES: usize = 2048;

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "token" || k == "authtoken" || k == "authorization" || k == "adminsecret" || k == "secret"
}

fn mask(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_key(k) {
                    *v = Value::String(MASK.into());
                } else {
                    mask(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

/// `"key" : "value"` (or a bare value) for the credential keys, in text that is not JSON.
fn secret_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"(?i)("(?:token|authToken|authorization|adminSecret|secret)"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]\s]+)"#,
        )
        .expect("a valid pattern")
    })
}

/// Frame text for debug logs with every credential masked, cut to 2 KiB.
pub fn redact_frame(text: &str) -> String {
    let mut out = match serde_json::from_str::<Value>(text) {
        Ok(mut v) => {
            mask(&mut v);
            v.to_string()
        }
        Err(_) => secret_pattern().replace_all(text, format!("${{1}}\"{MASK}\"")).into_owned(),
    };
    if out.len() > MAX_LOGGED_BYTES {
        let mut cut = MAX_LOGGED_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_frame;

    #[test]
    fn every_credential_is_masked_whatever_the_spacing_or_depth() {
        for frame in [
            r#"{"payload":{"authToken":"s3cret"},"x":1}"#,
            r#"{"type":"auth","token":"s3cret"}"#,
            r#"{ "type" : "auth" , "token" : "s3cret" }"#,
            r#"{"a":[{"b":{"AuthToken":"s3cret"}}]}"#,
            r#"{"headers":{"Authorization":"Bearer s3cret"}}"#,
            r#"{"token":{"nested":"s3cret"}}"#,
            r#"{"token": "s3cret", "broken"#,
            r#"{"authToken" :"s\"3cret" ,"#,
            r#"{"token": 123456789 , "#,
        ] {
            let masked = redact_frame(frame);
            assert!(
                !masked.contains("s3cret") && !masked.contains("3cret") && !masked.contains("123456789"),
                "{frame} → {masked}"
            );
            assert!(masked.contains("***"), "{frame} → {masked}");
        }
        assert_eq!(redact_frame(r#"{"x":1}"#), r#"{"x":1}"#);
    }
}
