//! The connection-time token check (what `@livestore/sync-cf`'s docs do in `validatePayload`).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Compare a presented token with the configured one in constant time (digests first, so
/// neither the content nor the length leaks through timing).
pub fn token_matches(presented: Option<&str>, expected: &str) -> bool {
    let Some(presented) = presented else {
        return false;
    };
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

/// The credentials of an `Authorization: Bearer …` value. The scheme name is
/// case-insensitive (RFC 7235 §2.1); any run of spaces or tabs may follow it.
pub fn bearer_credentials(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_once([' ', '\t'])?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for v in ["Bearer t", "bearer t", "BEARER  t", "bEaReR\tt "] {
            assert_eq!(super::bearer_credentials(v), Some("t"), "{v:?}");
        }
        for v in ["Basic t", "Bearer", "Bearer ", "Bearert"] {
            assert_eq!(super::bearer_credentials(v), None, "{v:?}");
        }
    }

    #[test]
    fn only_the_exact_token_matches() {
        assert!(super::token_matches(Some("secret"), "secret"));
        assert!(!super::token_matches(Some("secret "), "secret"));
        assert!(!super::token_matches(Some(""), "secret"));
        assert!(!super::token_matches(None, "secret"));
    }
}
